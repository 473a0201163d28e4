"""replay() over 10,000 stored verdicts, checked against a brute-force re-fusion written here.

The verdicts are synthetic (gateway/replay/synthetic.py: random service scores, fused by the
real fusion, stored as the ledger stores them). The brute force below decides each one from
the stored fusion document alone, by the policy's rules as the fusion module docstring states
them: per category the max over counted modalities of the weighted best item score (frames:
the level their temporal rule sustains), the thresholds, then the failure actions. The
synthetic data stays inside what it decides: one video stream, no banks, no streams over a
limit, the max fusion method.
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from gateway.replay import replay
from gateway.replay.synthetic import synthetic_records
from modgate.policy import Policy, load_policies, parse_policy
from modgate.store import StoreSettings, VerdictStore

DEFAULT = load_policies()["default"]
COUNT = 10_000
BATCH = 1000
TEXT_MODALITY = {"transcript": "AUDIO", "on_screen_text": "VISUAL"}


@pytest.fixture(scope="module")
def store_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The store replayed (SQLite; the shared store_url fixture can stand in for this one)."""
    return f"sqlite:///{tmp_path_factory.mktemp('replay') / 'verdicts.db'}"


def changed(policy: Policy, **paths: Any) -> Policy:
    data = copy.deepcopy(policy.model_dump(mode="json"))
    for path, value in paths.items():
        *parents, last = path.split("__")
        node = data
        for key in parents:
            node = node[key]
        node[last] = value
    return parse_policy(data)


LOWER_VIOLENCE = changed(DEFAULT, categories__violence__thresholds__review=0.3, version="lower-violence")
FAIL_CLOSED = changed(LOWER_VIOLENCE, failure__on_failed="error", version="fail-closed")


# --- the brute force ---------------------------------------------------------------------------------


def sustained(series: list[tuple[int, float]], min_frames: int, min_seconds: float) -> float:
    """The highest score held by min_frames frames or over a window of min_seconds (every window)."""
    ranked = sorted((s for _, s in series), reverse=True)
    level = ranked[min_frames - 1] if len(ranked) >= min_frames else 0.0
    if min_seconds > 0:
        for i in range(len(series)):
            for j in range(i, len(series)):
                if series[j][0] - series[i][0] >= min_seconds * 1000:
                    level = max(level, min(s for _, s in series[i : j + 1]))
    return max(level, 0.0)


def brute_force(fusion: dict[str, Any], policy: Policy) -> str:
    if fusion["kind"] == "unfused":
        return "UNFUSED"
    states = {m: o["state"] for m, o in fusion["outcomes"].items()}
    counted = {m for m, s in states.items() if s == "OK"}
    text_counted = counted | ({"VISUAL"} if states.get("VISUAL") in ("OK", "UNCALIBRATED") else set())
    weights = {m.value: w for m, w in policy.fusion.modality_weights.items()}
    best: dict[tuple[str, str], float] = {}
    for text in fusion["texts"]:
        source = text["item"]["source"]
        modality = TEXT_MODALITY.get(source, "TEXT")
        if modality not in text_counted:
            continue
        weight = policy.ocr.weight if source == "on_screen_text" else weights[modality]
        for category, score in text["result"]["scores"].items():
            best[(category, modality)] = max(best.get((category, modality), 0.0), score * weight)
    if "VISUAL" in counted:
        frames = sorted(fusion["frames"], key=lambda f: f["timestamp_ms"])
        for category, rule in policy.vision_categories().items():
            series = [(f["timestamp_ms"], f["scores"].get(category, 0.0)) for f in frames]
            level = sustained(series, rule.min_frames, rule.min_seconds) * weights["VISUAL"]
            best[(category, "VISUAL")] = max(best.get((category, "VISUAL"), 0.0), level)
    decision = 0
    for name, category in policy.categories.items():
        score = min(1.0, max([0.0] + [s for (c, m), s in best.items() if c == name and m in text_counted]))
        decision = max(
            decision,
            2 if score >= category.thresholds.block else 1 if score >= category.thresholds.review else 0,
        )
    actions = {"FAILED": policy.failure.on_failed, "TIMED_OUT": policy.failure.on_timeout}
    actions["UNCALIBRATED"] = policy.failure.on_uncalibrated
    for state in states.values():
        action = actions.get(state)
        if action is not None and action.value == "error":
            return "ERROR"
        if action is not None and action.value == "review":
            decision = max(decision, 1)
    return ("ALLOW", "REVIEW", "BLOCK")[decision]


# --- the stored verdicts ---------------------------------------------------------------------------


def batches(records: Iterator[Any]) -> Iterator[list[Any]]:
    batch = []
    for record in records:
        batch.append(record)
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


@pytest.fixture(scope="module")
def stored(store_url: str) -> Iterator[tuple[VerdictStore, list[dict[str, Any]]]]:
    """10,000 stored verdicts, and for each what the brute force decides under each policy
    (only that is kept: the records themselves are not, 10,000 fusion documents are large)."""
    store = VerdictStore.open(StoreSettings(url=store_url))
    expected = []
    for batch in batches(synthetic_records(DEFAULT, COUNT, seed=17)):
        store.commit_many(batch)
        for record in batch:
            expected.append(
                {
                    "stored": record.decision,
                    "default": brute_force(record.fusion, DEFAULT),
                    "lower": brute_force(record.fusion, LOWER_VIOLENCE),
                    "fail_closed": brute_force(record.fusion, FAIL_CLOSED),
                    "texts": bool(record.fusion.get("texts")),
                }
            )
    yield store, expected
    store.close()


def expected_matrix(expected: list[dict[str, Any]], key: str, keep: Any = None) -> dict[str, dict[str, int]]:
    counts: dict[str, Counter[str]] = {}
    for e in expected:
        if e[key] != "UNFUSED" and (keep is None or keep(e)):
            counts.setdefault(e["stored"], Counter())[e[key]] += 1
    return {
        s: {t: counts[s][t] for t in ("ALLOW", "REVIEW", "BLOCK", "ERROR")}
        for s in ("ALLOW", "REVIEW", "BLOCK")
        if s in counts
    }


def test_the_brute_force_agrees_with_what_was_stored(
    stored: tuple[VerdictStore, list[dict[str, Any]]],
) -> None:
    _, expected = stored
    fused = [e for e in expected if e["default"] != "UNFUSED"]
    assert len(fused) > 0.95 * COUNT
    assert [e["stored"] for e in fused] == [e["default"] for e in fused]
    # The data exercises what the matrix is about: every decision, and changes to count.
    assert set(Counter(e["stored"] for e in fused)) == {"ALLOW", "REVIEW", "BLOCK"}
    assert sum(e["lower"] != e["stored"] for e in fused) >= 20


def test_a_lower_violence_review_threshold_gives_the_brute_force_matrix(
    stored: tuple[VerdictStore, list[dict[str, Any]]],
) -> None:
    store, expected = stored
    report = replay(store, LOWER_VIOLENCE)
    assert report.scanned == COUNT
    assert report.matrix.to_json() == expected_matrix(expected, "lower")
    assert report.matrix.changed == sum(e["lower"] not in ("UNFUSED", e["stored"]) for e in expected)
    assert dict(report.not_refused) == {"unfused": sum(e["lower"] == "UNFUSED" for e in expected)}
    assert report.rescan.total == 0 and report.stale == {}
    assert [c.path for c, _ in report.refusable.values()] == [
        "version",
        "categories.violence.thresholds.review",
    ]
    # Only violence moved, only up to REVIEW; the biggest changes are among them, with evidence.
    assert set(report.thresholds) == {"violence"} and set(report.thresholds["violence"]) == {"crossed_review"}
    assert report.thresholds["violence"]["crossed_review"] >= report.matrix.changed
    assert report.top and all((c.stored, c.replayed) == ("ALLOW", "REVIEW") for c in report.top)
    assert all(any(e.category == "violence" for e in c.evidence()) for c in report.top)
    data = report.to_json()
    assert data["changed"] == report.matrix.changed and data["verdicts_per_s"] > 0
    assert data["top_changes"][0]["evidence"][0]["category"] == "violence"


def test_the_unchanged_policy_changes_nothing(stored: tuple[VerdictStore, list[dict[str, Any]]]) -> None:
    store, expected = stored
    report = replay(store, DEFAULT)
    assert report.matrix.to_json() == expected_matrix(expected, "default")
    assert report.matrix.changed == 0 and report.top == [] and report.thresholds == {}
    assert report.refusable == {} and report.stale == {} and report.rescan.total == 0


def test_a_policy_that_refuses_degraded_verdicts_counts_errors(
    stored: tuple[VerdictStore, list[dict[str, Any]]],
) -> None:
    store, expected = stored
    report = replay(store, FAIL_CLOSED, limit=3000)
    assert report.scanned == 3000
    first = expected[:3000]
    assert report.matrix.to_json() == expected_matrix(first, "fail_closed")
    errors = sum(e["fail_closed"] == "ERROR" for e in first)
    assert errors > 0 and sum(report.errors.values()) == errors
    assert all("forbids a degraded verdict (failure.on_failed=error)" in m for m in report.errors)


def test_changed_exemplars_flag_the_verdicts_holding_text_scores(
    stored: tuple[VerdictStore, list[dict[str, Any]]],
) -> None:
    store, expected = stored
    exemplars = [*DEFAULT.categories["violence"].text.exemplars, "I will find you."]  # type: ignore[union-attr]
    policy = changed(LOWER_VIOLENCE, categories__violence__text__exemplars=exemplars)
    report = replay(store, policy, limit=3000)
    first = expected[:3000]
    field = report.stale["categories.violence.text.exemplars"]
    assert field.change.rescan == {"text"} and field.policies == {f"{DEFAULT.name}@{DEFAULT.version}"}
    holding_text = [e for e in first if e["texts"] and e["lower"] != "UNFUSED"]
    assert field.verdicts == report.rescan.total == len(holding_text)
    # Replayed anyway, apart: the trusted matrix has only the verdicts without text scores.
    assert report.rescan.to_json() == expected_matrix(first, "lower", keep=lambda e: e["texts"])
    assert report.matrix.to_json() == expected_matrix(first, "lower", keep=lambda e: not e["texts"])
    assert any(c.needs_rescan for c in report.top)
    assert report.to_json()["needs_rescan"]["fields"][0]["message"] == (
        "needs a rescan: stored scores were computed with the old value"
    )


def test_since_and_limit_pick_the_oldest_matching(stored: tuple[VerdictStore, list[dict[str, Any]]]) -> None:
    store, _ = stored
    first = next(store.scan(limit=1))
    later = replay(store, DEFAULT, since=first.decided_at + 5000, limit=100)
    assert later.scanned == 100 and later.since == first.decided_at + 5000
    assert replay(store, DEFAULT, since=first.decided_at + 10**9).scanned == 0


def test_workers_build_the_same_report(stored: tuple[VerdictStore, list[dict[str, Any]]]) -> None:
    store, _ = stored

    def without_timing(workers: int) -> dict[str, Any]:
        data = replay(store, FAIL_CLOSED, limit=3000, top=5, workers=workers).to_json()
        assert data.pop("seconds") > 0 and data.pop("verdicts_per_s") > 0
        return data

    alone = without_timing(1)
    assert alone["changed"] > 0 and alone["top_changes"] and alone["errors"]
    assert without_timing(2) == alone
