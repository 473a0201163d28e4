"""The optional Argo Rollouts AnalysisTemplate: off by default, the Argo CRD schema accepts
what it renders and refuses real mistakes, its thresholds are the canary rules' defaults, and
its queries read only metrics the gateway exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml

from gateway import metrics
from modgate.tools.canary.rules import Rules, load_rules
from modgate.tools.canary.stats import z_for
from tests.helm.chart import CHART, Obj, render_case

SCHEMA = json.loads((Path(__file__).with_name("crd_schemas") / "analysistemplate.json").read_text())
CONDITIONS = ("all(result, # == 0)", "any(result, # == 2)")


def templates(case: str) -> list[Obj]:
    return [o for o in render_case(case) if o["kind"] == "AnalysisTemplate"]


def test_off_by_default() -> None:
    assert templates("defaults") == []
    assert yaml.safe_load((CHART / "values.yaml").read_text())["canaryAnalysis"]["enabled"] is False


def test_one_template_per_service_with_the_four_checks() -> None:
    found = {o["metadata"]["labels"]["modgate.io/service"]: o for o in templates("canary-analysis")}
    assert sorted(found) == ["text", "vision"]
    for service, obj in found.items():
        jsonschema.validate(obj, SCHEMA)
        names = [m["name"] for m in obj["spec"]["metrics"]]
        assert names == ["flag-rate", "latency-p95", "error-rate", "shadow-disagreement"]
        for metric in obj["spec"]["metrics"]:
            assert (metric["successCondition"], metric["failureCondition"]) == CONDITIONS
            prometheus = metric["provider"]["prometheus"]
            assert prometheus["address"] == "http://prometheus.monitoring.svc:9090"
            query = prometheus["query"]
            assert f'service="{service}",namespace="moderation"' in query and "[15m]" in query
            assert query.count("(") == query.count(")"), metric["name"]


def test_queries_read_only_metrics_the_gateway_exports() -> None:
    exported = set()
    for family in metrics.REGISTRY.collect():
        exported |= {family.name + suffix for suffix in ("", "_total", "_bucket", "_count", "_sum")}
    for obj in templates("canary-analysis"):
        for metric in obj["spec"]["metrics"]:
            used = set(re.findall(r"\b(modgate_[a-z_]+)\{", metric["provider"]["prometheus"]["query"]))
            assert used and used <= exported, used - exported


def test_the_chart_thresholds_are_the_rules_defaults() -> None:
    chart = yaml.safe_load((CHART / "values.yaml").read_text())["canaryAnalysis"]["rules"]
    rules = load_rules()
    assert rules == Rules()
    assert chart["minRequests"] == rules.min_requests
    assert chart["flagRate"]["maxChange"] == rules.flag_rate.max_change
    assert chart["flagRate"]["confidence"] == rules.flag_rate.confidence
    assert chart["shadow"]["maxDisagreement"] == rules.shadow.max_disagreement
    assert chart["shadow"]["confidence"] == rules.shadow.confidence
    assert chart["latency"]["maxP95Ratio"] == rules.latency.max_p95_ratio
    assert chart["latency"]["minP95IncreaseMs"] == rules.latency.min_p95_increase_ms
    assert chart["errors"]["maxRateDelta"] == rules.errors.max_rate_delta
    assert chart["errors"]["confidence"] == rules.errors.confidence
    for rule in ("flagRate", "shadow", "errors"):
        assert chart[rule]["z"] == pytest.approx(z_for(chart[rule]["confidence"]), abs=1e-3), rule
    # ... and the rendered queries carry them.
    query = {
        m["name"]: m["provider"]["prometheus"]["query"]
        for m in templates("canary-analysis")[0]["spec"]["metrics"]
    }
    assert "> bool 0.05)" in query["flag-rate"] and "(2.5758 *" in query["flag-rate"]
    assert "< bool 200)" in query["flag-rate"] and "< bool 200)" in query["error-rate"]
    assert "(1.5 *" in query["latency-p95"] and "> bool 50)" in query["latency-p95"]
    assert "> bool 0.01)" in query["error-rate"] and "> bool 0.05)" in query["shadow-disagreement"]


def test_the_crd_schema_rejects_what_the_api_server_would() -> None:
    """The converted Argo Rollouts schema is not vacuous: it refuses real mistakes."""
    good = templates("canary-analysis")[0]
    jsonschema.validate(good, SCHEMA)
    mistakes = []
    typo = json.loads(json.dumps(good))
    typo["spec"]["metrics"][0]["provider"]["prometheus"]["adress"] = "http://x"
    mistakes.append(typo)
    nameless = json.loads(json.dumps(good))
    del nameless["spec"]["metrics"][0]["name"]
    mistakes.append(nameless)
    bad_count = json.loads(json.dumps(good))
    bad_count["spec"]["metrics"][0]["count"] = {"times": 3}
    mistakes.append(bad_count)
    misplaced = json.loads(json.dumps(good))
    misplaced["spec"]["metrics"][0]["successCondition"] = ["all(result, # == 0)"]
    mistakes.append(misplaced)
    wrong_kind = json.loads(json.dumps(good))
    wrong_kind["apiVersion"] = "argoproj.io/v1"
    mistakes.append(wrong_kind)
    for bad in mistakes:
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, SCHEMA)
