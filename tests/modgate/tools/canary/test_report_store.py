"""`modgate canary report` on a real verdict store (SQLite and PostgreSQL): its figures equal
a brute-force recount of the records written, its window is --since/--until, and its exit
status is the decision."""

from __future__ import annotations

import dataclasses
import json
import random
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from gateway.replay.synthetic import synthetic_records
from modgate.policy import load_policies
from modgate.store import StoreSettings, VerdictRecord, VerdictStore
from modgate.tools.cli import main
from modgate.v1 import moderation_pb2 as pb
from tests.modgate.store.records import record

START = 1_780_000_000.0
FLAGGED = (pb.DECISION_REVIEW, pb.DECISION_BLOCK)


def served_by(rng: random.Random, stored: VerdictRecord) -> VerdictRecord:
    """The record as if routed: a third of the TEXT modalities by the canary, slower ones."""
    models = {m: dict(v) for m, v in stored.models.items()}
    slow = 0.0
    if "TEXT" in models and rng.random() < 1 / 3:
        models["TEXT"]["variant"] = "canary"
        slow = 0.2
    took = rng.uniform(0.05, 0.5) + slow
    return dataclasses.replace(stored, models=models, received_at=stored.decided_at - took)


def write(url: str, records: list[VerdictRecord]) -> None:
    store = VerdictStore.open(StoreSettings(url=url))
    try:
        store.commit_many(records)
    finally:
        store.close()


def recount(records: list[VerdictRecord], since: float, until: float) -> dict[str, dict[str, object]]:
    """What the report must say, counted the slow way from the records themselves."""
    out: dict[str, dict[str, object]] = {}
    for variant in ("stable", "canary"):
        mine = [
            r
            for r in records
            if since <= r.decided_at <= until and r.models.get("TEXT", {}).get("variant") == variant
        ]
        flags: Counter[str] = Counter()
        for r in mine:
            flags.update(
                c.category for c in pb.Verdict.FromString(r.verdict).categories if c.decision in FLAGGED
            )
        latencies = [(r.decided_at - r.received_at) * 1000 for r in mine]
        out[variant] = {
            "requests": len(mine),
            "decisions": dict(Counter(r.decision for r in mine)),
            "flagged": flags,
            "p50": float(np.percentile(latencies, 50, method="inverted_cdf")),
            "p95": float(np.percentile(latencies, 95, method="inverted_cdf")),
        }
    return out


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat()


def report(tmp_path: Path, *args: str) -> tuple[int, dict[str, object]]:
    out = tmp_path / "report.json"
    code = main(["canary", "report", "--json", str(out), *args])
    return code, json.loads(out.read_text())


def test_the_report_figures_equal_a_recount_of_the_store(store_url: str, tmp_path: Path) -> None:
    policy = load_policies()["default"]
    rng = random.Random(11)
    records = [served_by(rng, r) for r in synthetic_records(policy, 600, seed=4, start=START, spacing_s=1.0)]
    write(store_url, records)
    since, until = START + 50, START + 549
    code, document = report(
        tmp_path, "--store-url", store_url, "--service", "text", "--since", iso(since), "--until", iso(until)
    )
    expected = recount(records, since, until)
    assert code in (0, 1, 2) and document["exit_code"] == code
    assert set(document["variants"]) == {"stable", "canary"}
    for variant, figures in document["variants"].items():  # type: ignore[attr-defined]
        want = expected[variant]
        assert figures["requests"] == want["requests"] > 100
        assert {d: n for d, n in figures["decisions"].items() if n} == want["decisions"]
        assert {c: n for c, n in figures["flagged"].items() if n} == dict(want["flagged"])
        assert figures["latency_ms"]["p50"] == pytest.approx(want["p50"], abs=1e-6)
        assert figures["latency_ms"]["p95"] == pytest.approx(want["p95"], abs=1e-6)
        for category, count in figures["flagged"].items():
            assert figures["flag_rate"][category] == pytest.approx(count / want["requests"])
    unserved = sum(1 for r in records if since <= r.decided_at <= until and "TEXT" not in r.models)
    assert document["unserved"] == unserved


def verdict_bytes(flagged: set[str]) -> bytes:
    categories = [
        pb.CategoryScore(
            category=name,
            score=0.7 if name in flagged else 0.1,
            decision=pb.DECISION_REVIEW if name in flagged else pb.DECISION_ALLOW,
        )
        for name in ("violence", "harassment", "spam")
    ]
    decision = pb.DECISION_REVIEW if flagged else pb.DECISION_ALLOW
    return pb.Verdict(decision=decision, categories=categories).SerializeToString()


def traffic(variant: str, count: int, rates: dict[str, float], seed: int) -> list[VerdictRecord]:
    rng = random.Random(seed)
    out = []
    for i in range(count):
        flagged = {c for c, rate in rates.items() if rng.random() < rate}
        base = record(
            f"{variant}-{seed}-{i}", decision="REVIEW" if flagged else "ALLOW", decided_at=START + i
        )
        models = {"TEXT": {"name": "all-MiniLM-L6-v2", "version": "x", "variant": variant}}
        out.append(dataclasses.replace(base, models=models, verdict=verdict_bytes(flagged)))
    return out


def test_a_degraded_canary_rolls_back_naming_its_categories(store_url: str, tmp_path: Path) -> None:
    stable = traffic("stable", 600, {"violence": 0.15, "harassment": 0.1, "spam": 0.05}, seed=1)
    canary = traffic("canary", 300, {"violence": 0.0, "harassment": 0.3, "spam": 0.05}, seed=2)
    write(store_url, stable + canary)
    code, document = report(tmp_path, "--store-url", store_url)
    assert code == 2 and document["decision"] == "ROLLBACK"
    assert document["rollback_categories"] == ["harassment", "violence"]


def test_the_same_model_promotes_and_a_thin_canary_holds(store_url: str, tmp_path: Path) -> None:
    rates = {"violence": 0.1, "harassment": 0.1, "spam": 0.05}
    write(store_url, traffic("stable", 600, rates, seed=1) + traffic("canary", 300, rates, seed=2))
    assert report(tmp_path, "--store-url", store_url)[0] == 0
    # An evaluation caller pinned the canary on a set of violent texts: left out, it changes nothing.
    pinned = [
        dataclasses.replace(r, caller="eval-bot") for r in traffic("canary", 200, {"violence": 0.9}, seed=3)
    ]
    write(store_url, pinned)
    assert report(tmp_path, "--store-url", store_url)[0] == 2
    code, document = report(tmp_path, "--store-url", store_url, "--exclude-caller", "eval-bot")
    assert code == 0 and document["excluded"] == 200 and document["variants"]["canary"]["requests"] == 300
    rules = tmp_path / "rules.yaml"
    rules.write_text("min_requests: 400\n")
    code, document = report(
        tmp_path, "--store-url", store_url, "--rules", str(rules), "--exclude-caller", "eval-bot"
    )
    assert code == 1 and document["decision"] == "HOLD"


def test_what_prevents_a_decision_exits_3(
    store_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(store_url, traffic("stable", 10, {}, seed=1))
    bad = tmp_path / "rules.yaml"
    bad.write_text("flag_rate: {max_change: 2}\n")
    assert main(["canary", "report", "--store-url", store_url, "--rules", str(bad)]) == 3
    assert "flag_rate.max_change" in capsys.readouterr().err
    assert main(["canary", "report", "--store-url", f"sqlite:///{tmp_path / 'none.db'}"]) == 3
    with pytest.raises(SystemExit) as usage:
        main(["canary", "report", "--service", "audio"])
    assert usage.value.code == 3
