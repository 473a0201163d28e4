"""The decision on figures built by hand: thin samples hold, noise does not roll back, a real
change does and names its category, each check's threshold is where the rules put it."""

from __future__ import annotations

from collections import Counter

import pytest

from modgate.tools.canary.collect import CANARY, STABLE, StoreFigures, VariantFigures
from modgate.tools.canary.decide import Decision, Status, decide
from modgate.tools.canary.rules import Rules
from modgate.tools.canary.scrape import MetricFigures

RULES = Rules()


def variant(requests: int, flags: dict[str, int], latency_ms: float = 100.0) -> VariantFigures:
    figures = VariantFigures(requests=requests, flags=Counter(flags))
    figures.decisions["ALLOW"] = requests
    figures.latencies_ms = [latency_ms] * requests
    return figures


def store(
    stable: VariantFigures, canary: VariantFigures, categories: tuple[str, ...] = ("violence", "spam")
) -> StoreFigures:
    return StoreFigures("text", None, None, {STABLE: stable, CANARY: canary}, set(categories))


def metrics(
    ok: dict[str, float], failed: dict[str, float], shadows: dict[str, float] | None = None
) -> MetricFigures:
    figures = MetricFigures()
    figures.ok_calls.update(ok)
    figures.failed_calls.update(failed)
    figures.shadows.update(shadows or {})
    return figures


def test_the_same_rates_promote() -> None:
    outcome = decide(store(variant(1000, {"violence": 100}), variant(400, {"violence": 40})), None, RULES)
    assert outcome.decision == Decision.PROMOTE and outcome.exit_code == 0
    assert {c.name: c.status for c in outcome.checks}["errors"] == Status.SKIP


def test_too_few_requests_hold_even_with_a_large_change() -> None:
    outcome = decide(store(variant(1000, {"violence": 100}), variant(150, {"violence": 150})), None, RULES)
    assert outcome.decision == Decision.HOLD and outcome.exit_code == 1
    assert "too few verdicts (canary 150" in outcome.checks[0].detail


def test_a_significant_change_beyond_the_allowed_rolls_back_naming_the_category() -> None:
    figures = store(variant(1000, {"violence": 100, "spam": 50}), variant(400, {"violence": 80, "spam": 20}))
    outcome = decide(figures, None, RULES)
    assert outcome.decision == Decision.ROLLBACK and outcome.exit_code == 2
    assert outcome.rollback_categories == ["violence"]  # 10% -> 20%; spam 5% -> 5%


def test_a_drop_in_flag_rate_rolls_back_too() -> None:
    outcome = decide(store(variant(1000, {"violence": 300}), variant(400, {"violence": 40})), None, RULES)
    assert outcome.rollback_categories == ["violence"]


def test_a_large_but_noisy_change_does_not_roll_back() -> None:
    # 10% -> 17% on 200 verdicts: the 99% interval of the difference still contains 0.
    outcome = decide(store(variant(200, {"violence": 20}), variant(200, {"violence": 34})), None, RULES)
    check = next(c for c in outcome.checks if c.category == "violence")
    assert check.status == Status.PASS and not check.figures["significant"]
    assert outcome.decision == Decision.PROMOTE


def test_a_significant_change_within_the_allowed_passes() -> None:
    # 10% -> 13% on 20,000 each: significant, but under max_change.
    outcome = decide(
        store(variant(20000, {"violence": 2000}), variant(20000, {"violence": 2600})), None, RULES
    )
    check = next(c for c in outcome.checks if c.category == "violence")
    assert check.figures["significant"] and check.status == Status.PASS


@pytest.mark.parametrize(
    ("stable_ms", "canary_ms", "status"),
    [(100, 149, Status.PASS), (100, 160, Status.FAIL), (10, 40, Status.PASS), (0, 0, Status.PASS)],
)
def test_latency_fails_over_the_ratio_and_the_absolute_increase(
    stable_ms: float, canary_ms: float, status: Status
) -> None:
    figures = store(variant(300, {}, stable_ms), variant(300, {}, canary_ms))
    check = next(c for c in decide(figures, None, RULES).checks if c.name == "latency")
    assert check.status == status, check.detail


@pytest.mark.parametrize(
    ("canary_failed", "status"),
    [(2, Status.PASS), (40, Status.FAIL), (8, Status.PASS)],  # of 1000: 0.2%, 4%, 0.8% (< +1%)
)
def test_error_rate_delta(canary_failed: int, status: Status) -> None:
    figures = store(variant(300, {}), variant(300, {}))
    measured = metrics({STABLE: 998, CANARY: 1000 - canary_failed}, {STABLE: 2, CANARY: canary_failed})
    outcome = decide(figures, measured, RULES)
    check = next(c for c in outcome.checks if c.name == "errors")
    assert check.status == status, check.detail
    assert (outcome.decision == Decision.ROLLBACK) == (status == Status.FAIL)


def test_few_calls_hold_the_error_check() -> None:
    check = next(
        c
        for c in decide(store(variant(300, {}), variant(300, {})), metrics({STABLE: 50}, {}), RULES).checks
        if c.name == "errors"
    )
    assert check.status == Status.HOLD


@pytest.mark.parametrize(
    ("disagree", "status", "decision"),
    [
        (2, Status.PASS, Decision.PROMOTE),
        (8, Status.HOLD, Decision.HOLD),
        (30, Status.FAIL, Decision.ROLLBACK),
    ],
)
def test_shadow_mode_is_decided_by_the_disagreement_interval(
    disagree: int, status: Status, decision: Decision
) -> None:
    # Shadow mode: the canary served nothing; 200 comparisons, 1% / 4% / 15% disagreeing.
    figures = store(variant(500, {"violence": 50}), variant(0, {}))
    measured = metrics(
        {STABLE: 700, CANARY: 200}, {}, {"agree": 200 - disagree, "disagree": disagree, "ok": 200}
    )
    outcome = decide(figures, measured, RULES)
    checks = {c.name: c for c in outcome.checks}
    assert checks["variants"].status == Status.SKIP and checks["shadow"].status == status
    assert outcome.decision == decision


def test_without_any_canary_traffic_it_holds() -> None:
    outcome = decide(store(variant(500, {}), variant(0, {})), None, RULES)
    assert outcome.decision == Decision.HOLD
