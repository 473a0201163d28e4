"""Every rendered object validates against the Kubernetes 1.29 and 1.33 OpenAPI schemas
(kubernetes-validate --strict: unknown fields are errors). The CRD kinds the chart can render
(Gateway API GRPCRoute, Istio VirtualService, Argo Rollouts AnalysisTemplate) have no schema
there; they are taken out of the kubernetes-validate input explicitly and checked against JSON
schemas in tests/helm/crd_schemas/: hand-written ones of the fields this chart renders, and
the real Argo Rollouts CRD schema converted by crd_schemas/from_crd.py."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from tests.helm.chart import KUBE_VERSIONS, Obj, matrix, parse, render_case, render_text

CRD_SCHEMAS = {
    "GRPCRoute": Path(__file__).with_name("crd_schemas") / "grpcroute.json",
    "VirtualService": Path(__file__).with_name("crd_schemas") / "virtualservice.json",
    "AnalysisTemplate": Path(__file__).with_name("crd_schemas") / "analysistemplate.json",
}
CORE_KINDS = {
    "ConfigMap",
    "Deployment",
    "HorizontalPodAutoscaler",
    "NetworkPolicy",
    "Pod",
    "PodDisruptionBudget",
    "Service",
    "ServiceAccount",
}
KUBERNETES_VALIDATE = Path(sys.executable).with_name("kubernetes-validate")


@pytest.mark.parametrize("case", sorted(matrix()))
def test_rendered_objects_validate_against_kubernetes_schemas(case: str, tmp_path: Path) -> None:
    core: list[Obj] = []
    for kube_version in KUBE_VERSIONS:
        objs = parse(render_text(matrix()[case], kube_version=kube_version))
        kinds = {o["kind"] for o in objs}
        assert kinds <= CORE_KINDS | set(CRD_SCHEMAS), f"unvalidated kinds: {kinds - CORE_KINDS}"
        rendered_core = [o for o in objs if o["kind"] in CORE_KINDS]
        if core:
            assert rendered_core == core, "the render differs between Kubernetes versions"
        core = rendered_core
    manifest = tmp_path / f"{case}.yaml"
    manifest.write_text(yaml.safe_dump_all(core, sort_keys=False))

    version_args = [arg for v in KUBE_VERSIONS for arg in ("-k", v)]
    proc = subprocess.run(
        [str(KUBERNETES_VALIDATE), "--strict", *version_args, str(manifest)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    problems = [line for line in lines if not line.startswith("INFO ")]
    # WARN lines ("couldn't find schema") exit 0 in kubernetes-validate; here they fail.
    assert proc.returncode == 0 and not problems, "\n".join(problems) + proc.stderr
    # Every object really was checked against both schema versions.
    for version in KUBE_VERSIONS:
        minor = ".".join(version.split(".")[:2])
        passed = [line for line in lines if line.endswith(f"against version {minor}")]
        assert len(passed) == len(core), (version, len(passed), len(core))


@pytest.mark.parametrize("case", sorted(matrix()))
def test_crd_objects_match_their_schemas(case: str) -> None:
    for obj in render_case(case):
        schema_file = CRD_SCHEMAS.get(obj["kind"])
        if schema_file is None:
            continue
        jsonschema.validate(obj, json.loads(schema_file.read_text()))
        if obj["kind"] == "VirtualService":
            for route in obj["spec"]["http"]:
                weights = [d.get("weight", 100) for d in route["route"]]
                assert sum(weights) == 100, weights


def test_crd_schemas_reject_what_the_api_server_would() -> None:
    """The hand-written CRD schemas are not vacuous: they reject real mistakes."""
    objs = render_case("gateway-canary")
    route = next(o for o in objs if o["kind"] == "GRPCRoute")
    bad_weight = json.loads(json.dumps(route))
    bad_weight["spec"]["rules"][0]["backendRefs"][0]["weight"] = -5
    unknown_field = json.loads(json.dumps(route))
    unknown_field["spec"]["rules"][0]["backendRefs"][0]["wieght"] = 5
    schema = json.loads(CRD_SCHEMAS["GRPCRoute"].read_text())
    for bad in (bad_weight, unknown_field):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, schema)
    service = next(o for o in objs if o["kind"] == "VirtualService")
    bad_mirror = json.loads(json.dumps(service))
    bad_mirror["spec"]["http"][0]["mirrorPercentage"] = {"value": 150}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad_mirror, json.loads(CRD_SCHEMAS["VirtualService"].read_text()))


def test_bundled_schema_versions_are_the_ones_we_claim() -> None:
    proc = subprocess.run([str(KUBERNETES_VALIDATE), "--version"], capture_output=True, text=True, check=True)
    assert re.match(r"^1\.(3[3-9]|[4-9]\d)\.", proc.stdout.strip()), proc.stdout
    import kubernetes_validate.utils as kv

    available = set(kv.all_versions())
    for version in KUBE_VERSIONS:
        assert version in available, f"kubernetes-validate has no {version} schemas"
