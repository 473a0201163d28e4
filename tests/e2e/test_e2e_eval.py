"""`modgate eval` against real processes: the labelled set of tests/eval_set.py (352 texts and
6 generated videos) through a real gateway and the real model services, read back from the
gateway's verdict store and recomputed by brute force here."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from gateway.auth import token_digest
from modgate.client import ModerationClient, ModerationError, Options
from modgate.store import StoreSettings, VerdictStore
from modgate.store.labels import ReviewLabel, add_label
from modgate.tools.stack import free_port, service_spec
from modgate.v1 import moderation_pb2 as pb
from tests.e2e.conftest import QUIET_ENV, Gateway, Services, metric_value
from tests.e2e.degraded_text import canary_env, degraded_text_model
from tests.eval_set import write_eval_set

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1200)]

EVAL_TOKEN, PRODUCT_TOKEN = "eval-token-0123456789", "product-token-0123456789"
ITEMS = 358  # tests/eval_set.py: 352 texts (120 benign, 32 hard benign, 200 violations) + 6 videos
CATEGORIES = ("violence", "weapons", "sexual", "hate", "harassment", "self_harm", "drugs", "spam_scam")


@pytest.fixture(scope="module")
def eval_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_eval_set(tmp_path_factory.mktemp("eval-set"))


@pytest.fixture(scope="module")
def tokens_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("eval-auth") / "tokens.yaml"
    path.write_text(
        f"{token_digest(EVAL_TOKEN)}: {{caller: evaluator, policies: ['*'], pin_variant: true}}\n"
        f"{token_digest(PRODUCT_TOKEN)}: {{caller: product, policies: ['*']}}\n",
        encoding="utf-8",
    )
    return path


def modgate_eval(*args: str | Path, token: str = "") -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "modgate.tools.cli", "eval", *map(str, args), "--quiet"]
    if token:
        argv += ["--token", token]
    return subprocess.run(argv, capture_output=True, text=True, timeout=900, check=False)


def stored_verdicts(store_url: str) -> dict[str, pb.Verdict]:
    """content_id (the item id) -> the verdict the gateway stored for it."""
    store = VerdictStore.open(StoreSettings(url=store_url))
    try:
        return {r.content_id: pb.Verdict.FromString(r.verdict) for r in store.scan()}
    finally:
        store.close()


def brute_force(labels: dict[str, str], verdicts: dict[str, pb.Verdict]) -> dict[str, Any]:
    """Every figure the report states, counted one item at a time."""
    tp = fp = fn = tn = 0
    per: dict[str, dict[str, int]] = {c: {"hit": 0, "pred": 0, "sup": 0} for c in CATEGORIES}
    right = flagged_pos = 0
    for item_id, label in labels.items():
        verdict = verdicts[item_id]
        flagged = verdict.decision in (pb.DECISION_REVIEW, pb.DECISION_BLOCK)
        top = max(verdict.categories, key=lambda c: c.score).category
        predicted = top if flagged else "benign"
        positive = label != "benign"
        if positive and flagged:
            tp += 1
            flagged_pos += 1
            right += top == label
        elif flagged:
            fp += 1
        elif positive:
            fn += 1
        else:
            tn += 1
        if label != "benign":
            per[label]["sup"] += 1
        if predicted != "benign":
            per[predicted]["pred"] += 1
            per[predicted]["hit"] += predicted == label
    precision, recall = tp / (tp + fp), tp / (tp + fn)
    categories = {}
    for c, n in per.items():
        p = n["hit"] / n["pred"] if n["pred"] else 0.0
        r = n["hit"] / n["sup"] if n["sup"] else 0.0
        categories[c] = {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0}
    return {
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "tn": tn,
        "precision": precision,
        "recall": recall,
        "f1": 2 * precision * recall / (precision + recall),
        "right_category": right / flagged_pos,
        "categories": categories,
    }


def test_eval_report_equals_a_brute_force_recount_of_the_stored_verdicts(
    services: Services, start_gateway: Callable[..., Gateway], eval_set: Path, tmp_path: Path
) -> None:
    store_url = f"sqlite:///{tmp_path / 'verdicts.db'}"
    gateway = start_gateway("gateway-eval", services.upstreams_yaml(), MODGATE_STORE_URL=store_url)
    out = tmp_path / "report"
    tuning = ("--suggest-thresholds", "--target-precision", "0.9", "--confidence", "0.8")
    done = modgate_eval(eval_set, "--gateway", gateway.target, "--out", out, "-n", "4", *tuning)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    run = report["runs"][0]
    assert run["name"] == "routed" and run["figures"]["items"] == ITEMS and run["figures"]["errors"] == 0

    labels = {json.loads(line)["id"]: json.loads(line)["label"] for line in eval_set.read_text().splitlines()}
    expected = brute_force(labels, stored_verdicts(store_url))
    got = run["figures"]
    binary = got["flagged_vs_benign"]
    assert (binary["tp"], binary["fp"], binary["fn"], binary["tn"]) == tuple(
        expected[k] for k in ("tp", "fp", "fn", "tn")
    )
    assert binary["precision"] == pytest.approx(expected["precision"], abs=1e-12)
    assert binary["recall"] == pytest.approx(expected["recall"], abs=1e-12)
    assert binary["f1"] == pytest.approx(expected["f1"], abs=1e-12)
    assert got["right_category"] == pytest.approx(expected["right_category"], abs=1e-12)
    for figures in got["categories"]:
        want = expected["categories"][figures["category"]]
        assert (figures["precision"], figures["recall"], figures["f1"]) == pytest.approx(
            (want["precision"], want["recall"], want["f1"]), abs=1e-12
        ), figures["category"]
    # Confusion rows add up to the labels; the videos were decided by what was heard.
    assert sum(sum(row.values()) for row in got["confusion"].values()) == ITEMS
    videos = {i["id"]: i for i in run["items"] if i["kind"] == "media"}
    assert len(videos) == 6 and {v["decided_by"] for v in videos.values() if v["decision"] != "ALLOW"} <= {
        "AUDIO"
    }
    assert got["latency"]["count"] == ITEMS and 0 < got["latency"]["p50_ms"] <= got["latency"]["p95_ms"]

    # Files: markdown with the tables, a real PNG, a diff against the policy file.
    markdown = (out / "report.md").read_text()
    assert "| category | support |" in markdown and "Confusion matrix" in markdown
    assert (out / "pr-routed.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # Thresholds fitted on one half reach the asked precision on the other half.
    thresholds = report["thresholds"]
    assert thresholds["tuned_on"] + thresholds["held_out_items"] == ITEMS
    held = {h["category"]: h for h in thresholds["held_out"]}
    assert len(held) >= 4, thresholds["suggestions"]
    for category, figures in held.items():
        if figures["flagged"]:
            assert figures["precision"] >= 0.9, (category, figures)
    diff = (out / "thresholds.diff").read_text()
    assert diff.startswith("--- a/default.yaml") and "-tuned" in diff

    # --from-reviews: reviewers' labels on 40 of those stored verdicts are the ground truth.
    store = VerdictStore.open(StoreSettings(url=store_url))
    try:
        by_content = {r.content_id: r.verdict_id for r in store.scan()}
        reviewed = sorted(labels)[::9][:40]
        for item_id in reviewed:
            label = labels[item_id]
            decision = "ALLOW" if label == "benign" else "BLOCK"
            category = "" if label == "benign" else label
            add_label(store, ReviewLabel(by_content[item_id], "reviewer-1", decision, category))
    finally:
        store.close()
    from_reviews = modgate_eval("--from-reviews", "--store-url", store_url, "--out", tmp_path / "reviews")
    assert from_reviews.returncode == 0, from_reviews.stderr[-3000:]
    review_run = json.loads((tmp_path / "reviews" / "report.json").read_text())["runs"][0]
    assert review_run["name"] == "reviews" and review_run["figures"]["items"] == len(reviewed) == 40
    recount = brute_force({i: labels[i] for i in reviewed}, stored_verdicts(store_url))
    assert review_run["figures"]["flagged_vs_benign"]["f1"] == pytest.approx(recount["f1"], abs=1e-12)
    assert {i["label"] for i in review_run["items"]} == {labels[i] for i in reviewed}


def test_variant_pinning_is_for_evaluation_callers_only(
    services: Services, start_gateway: Callable[..., Gateway], tokens_file: Path
) -> None:
    gateway = start_gateway(
        "gateway-pin-auth", services.upstreams_yaml(), MODGATE_GATEWAY_AUTH_TOKENS_FILE=str(tokens_file)
    )
    with ModerationClient(gateway.target, token=PRODUCT_TOKEN, timeout_s=30) as product:
        with pytest.raises(ModerationError) as refused:
            product.moderate_text("Nice goal!", options=Options(variant="stable"))
        assert (
            refused.value.code == grpc.StatusCode.PERMISSION_DENIED and "pin_variant" in refused.value.details
        )
        assert product.moderate_text("Nice goal!").decision == pb.DECISION_ALLOW
    with ModerationClient(gateway.target, token=EVAL_TOKEN, timeout_s=30) as evaluator:
        verdict = evaluator.moderate_text("Nice goal!", options=Options(variant="stable"))
        assert {m.model.variant for m in verdict.modalities if m.model.variant} == {"stable"}
        with pytest.raises(ModerationError) as no_canary:
            evaluator.moderate_text("Nice goal!", options=Options(variant="canary"))
        assert no_canary.value.code == grpc.StatusCode.FAILED_PRECONDITION
        assert "no service has a canary" in no_canary.value.details


@pytest.fixture(scope="module")
def text_canaries(services: Services, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Two text canaries: the same model as stable, and one made worse on purpose (1 of its 6
    transformer layers, Gaussian noise of one standard deviation on every weight tensor;
    tests/e2e/degraded_text.py)."""
    degraded = degraded_text_model(tmp_path_factory.mktemp("degraded") / "model", layers=1, noise=1.0)
    urls = {}
    for name, extra in (("same", {}), ("degraded", canary_env(degraded))):
        port = free_port()
        env = {**QUIET_ENV, "MODGATE_VARIANT": "canary", **extra}
        spec = service_spec("text", port, python=sys.executable, env=env, name=f"text-canary-{name}")
        services.processes.wait_ready(services.processes.start(spec))
        urls[name] = f"http://127.0.0.1:{port}"
    yield urls
    for name in urls:
        services.processes.stop(f"text-canary-{name}")


@pytest.mark.parametrize("canary", ["same", "degraded"])
def test_compare_rolls_back_a_worse_text_canary_and_promotes_the_same_model(
    canary: str,
    services: Services,
    start_gateway: Callable[..., Gateway],
    text_canaries: dict[str, str],
    tokens_file: Path,
    tmp_path: Path,
) -> None:
    # Weight 0: product traffic never reaches the canary; only pinned evaluation calls do.
    store_url = f"sqlite:///{tmp_path / 'verdicts.db'}"
    gateway = start_gateway(
        f"gateway-compare-{canary}",
        services.upstreams_yaml(text=f'canary: {{url: "{text_canaries[canary]}", weight: 0}}'),
        MODGATE_GATEWAY_AUTH_TOKENS_FILE=str(tokens_file),
        MODGATE_STORE_URL=store_url,
    )
    texts = write_eval_set(tmp_path / "set", videos=False)
    out = tmp_path / "report"
    done = modgate_eval(texts, "--gateway", gateway.target, "--out", out, "--compare", token=EVAL_TOKEN)
    report = json.loads((out / "report.json").read_text())
    comparison = report["comparison"]
    stable, pinned = report["runs"]
    assert {i["variants"]["text"] for i in stable["items"]} == {"stable"}
    assert {i["variants"]["text"] for i in pinned["items"]} == {"canary"}
    assert comparison["items"] == 352
    if canary == "same":
        assert done.returncode == 0, done.stderr[-3000:]
        assert comparison["recommendation"] == "PROMOTE" and comparison["changed"] == []
        assert all(d["delta"] == 0 for d in comparison["deltas"]), comparison["deltas"]
        # Pinned evaluation calls stay out of the per-variant counters Prometheus rolls out by;
        # product traffic (routed: weight 0 -> stable) is counted.
        assert metric_value(gateway.metrics(), "modgate_gateway_verdicts_total", service="text") == 0
        with ModerationClient(gateway.target, token=PRODUCT_TOKEN, timeout_s=30) as product:
            for i in range(3):
                product.moderate_text(f"Lovely picnic in the park, day {i}")
        counters = gateway.metrics()
        assert metric_value(counters, "modgate_gateway_verdicts_total", service="text", variant="stable") == 3
        assert metric_value(counters, "modgate_gateway_verdicts_total", service="text", variant="canary") == 0
    else:
        assert done.returncode == 2, done.stderr[-3000:]
        assert comparison["recommendation"] == "ROLLBACK"
        worse = comparison["worse_categories"]
        assert worse and set(worse) <= set(CATEGORIES), comparison["deltas"]
        assert len(comparison["changed"]) > 10
        assert f"Recommendation: **ROLLBACK** (worse: {', '.join(worse)})" in (out / "report.md").read_text()

    # The canary report reads the same verdicts from the store (both variants on the same items)
    # and the gateway's counters, and comes to the same conclusion by its own rules.
    argv = [sys.executable, "-m", "modgate.tools.cli", "canary", "report", "--service", "text"]
    argv += [
        "--store-url",
        store_url,
        "--metrics-url",
        gateway.metrics_url,
        "--json",
        str(tmp_path / "c.json"),
    ]
    canary_report = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    decision = json.loads((tmp_path / "c.json").read_text())
    if canary == "same":
        assert canary_report.returncode == 0, canary_report.stdout + canary_report.stderr
        assert decision["decision"] == "PROMOTE"
    else:
        assert canary_report.returncode == 2, canary_report.stdout + canary_report.stderr
        assert decision["decision"] == "ROLLBACK" and decision["rollback_categories"]
        assert set(decision["rollback_categories"]) <= set(CATEGORIES)
        assert "ROLLBACK" in canary_report.stdout
