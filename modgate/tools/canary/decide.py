"""PROMOTE / HOLD / ROLLBACK from the figures and the rules.

Each check says pass, hold (not enough data, or not conclusive yet), fail, or skip (nothing
to judge: no metrics given, no shadow traffic). The decision: ROLLBACK when any check fails,
else HOLD when any holds or none passed, else PROMOTE. A check holds until it has
`min_requests` samples on each side, so nothing but HOLD comes out of a thin sample.

Noise must not roll back: a flag-rate or error-rate change fails only when it is larger than
allowed *and* its confidence interval excludes no change (stats.difference). With shadow
traffic and no canary-served verdict (shadow mode), the variant comparisons are skipped and
the shadow check decides.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from modgate.tools.canary.collect import CANARY, STABLE, StoreFigures
from modgate.tools.canary.rules import Rules
from modgate.tools.canary.scrape import MetricFigures
from modgate.tools.canary.stats import difference, wilson


class Status(StrEnum):
    PASS = "pass"
    HOLD = "hold"
    FAIL = "fail"
    SKIP = "skip"


class Decision(StrEnum):
    PROMOTE = "PROMOTE"
    HOLD = "HOLD"
    ROLLBACK = "ROLLBACK"


EXIT_CODES = {Decision.PROMOTE: 0, Decision.HOLD: 1, Decision.ROLLBACK: 2}


@dataclass(frozen=True)
class Check:
    name: str  # flag_rate, latency, errors, shadow
    status: Status
    detail: str
    category: str | None = None
    figures: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    decision: Decision
    checks: list[Check]

    @property
    def rollback_categories(self) -> list[str]:
        return [c.category for c in self.checks if c.status == Status.FAIL and c.category is not None]

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.decision]


def decide(store: StoreFigures, metrics: MetricFigures | None, rules: Rules) -> Outcome:
    shadow = shadow_check(metrics, rules)
    shadow_mode = store.variant(CANARY).requests == 0 and shadow.status != Status.SKIP
    if shadow_mode:
        why = "shadow mode: the canary served no stored verdict, its shadow comparisons decide"
        checks = [Check("variants", Status.SKIP, why)]
    else:
        checks = [*flag_checks(store, rules), latency_check(store, rules)]
    checks += [error_check(metrics, rules), shadow]
    return Outcome(_combine(checks), checks)


def _combine(checks: list[Check]) -> Decision:
    statuses = {c.status for c in checks}
    if Status.FAIL in statuses:
        return Decision.ROLLBACK
    if Status.HOLD in statuses or Status.PASS not in statuses:
        return Decision.HOLD
    return Decision.PROMOTE


def _too_few(name: str, counts: dict[str, int], rules: Rules, what: str) -> Check | None:
    short = {side: n for side, n in counts.items() if n < rules.min_requests}
    if not short:
        return None
    told = ", ".join(f"{side} {n}" for side, n in short.items())
    return Check(name, Status.HOLD, f"too few {what} ({told}; min_requests {rules.min_requests})")


def flag_checks(store: StoreFigures, rules: Rules) -> list[Check]:
    stable, canary = store.variant(STABLE), store.variant(CANARY)
    few = _too_few("flag_rate", {STABLE: stable.requests, CANARY: canary.requests}, rules, "verdicts")
    if few is not None:
        return [few]
    rule = rules.flag_rate
    checks = []
    for category in sorted(store.categories):
        ks, kc = stable.flags[category], canary.flags[category]
        change = kc / canary.requests - ks / stable.requests
        interval = difference(ks, stable.requests, kc, canary.requests, rule.confidence)
        significant = interval.excludes(0.0)
        failed = significant and abs(change) > rule.max_change
        detail = (
            f"{category}: flag rate {ks / stable.requests:.1%} -> {kc / canary.requests:.1%} "
            f"({change:+.1%}, {rule.confidence:.0%} interval {interval.low:+.1%}..{interval.high:+.1%}; "
            f"allowed ±{rule.max_change:.1%}{'' if significant else ', not significant'})"
        )
        figures = {"change": change, "interval": [interval.low, interval.high], "significant": significant}
        checks.append(Check("flag_rate", Status.FAIL if failed else Status.PASS, detail, category, figures))
    return checks


def latency_check(store: StoreFigures, rules: Rules) -> Check:
    stable, canary = store.variant(STABLE), store.variant(CANARY)
    few = _too_few("latency", {STABLE: stable.requests, CANARY: canary.requests}, rules, "verdicts")
    if few is not None:
        return few
    rule = rules.latency
    p95s, p95c = stable.latency_ms(95) or 0.0, canary.latency_ms(95) or 0.0
    ratio = p95c / p95s if p95s > 0 else float("inf") if p95c > 0 else 1.0
    failed = ratio > rule.max_p95_ratio and p95c - p95s > rule.min_p95_increase_ms
    detail = (
        f"p95 {p95s:.0f} ms -> {p95c:.0f} ms (x{ratio:.2f}; allowed x{rule.max_p95_ratio:g} "
        f"unless under +{rule.min_p95_increase_ms:g} ms)"
    )
    figures = {"p95_ms": {STABLE: p95s, CANARY: p95c}, "ratio": ratio}
    return Check("latency", Status.FAIL if failed else Status.PASS, detail, figures=figures)


def error_check(metrics: MetricFigures | None, rules: Rules) -> Check:
    if metrics is None:
        return Check("errors", Status.SKIP, "not measured (no --metrics-url)")
    ns, nc = metrics.calls(STABLE), metrics.calls(CANARY)
    few = _too_few("errors", {STABLE: ns, CANARY: nc}, rules, "upstream calls")
    if few is not None:
        return few
    rule = rules.errors
    ks, kc = metrics.failures(STABLE), metrics.failures(CANARY)
    delta = kc / nc - ks / ns
    interval = difference(ks, ns, kc, nc, rule.confidence)
    failed = interval.low > 0 and delta > rule.max_rate_delta
    detail = (
        f"error rate {ks / ns:.2%} -> {kc / nc:.2%} ({delta:+.2%}, {rule.confidence:.0%} interval "
        f"{interval.low:+.2%}..{interval.high:+.2%}; allowed +{rule.max_rate_delta:.2%})"
    )
    figures = {"rate": {STABLE: ks / ns, CANARY: kc / nc}, "interval": [interval.low, interval.high]}
    return Check("errors", Status.FAIL if failed else Status.PASS, detail, figures=figures)


def shadow_check(metrics: MetricFigures | None, rules: Rules) -> Check:
    if metrics is None:
        return Check("shadow", Status.SKIP, "not measured (no --metrics-url)")
    n, k = metrics.shadow_compared, metrics.shadow_disagreed
    if n == 0:
        return Check("shadow", Status.SKIP, "no shadow comparisons (the canary takes traffic, or none yet)")
    few = _too_few("shadow", {"shadow": n}, rules, "shadow comparisons")
    if few is not None:
        return few
    rule = rules.shadow
    interval = wilson(k, n, rule.confidence)
    if interval.low > rule.max_disagreement:
        status = Status.FAIL
    elif interval.high > rule.max_disagreement:
        status = Status.HOLD
    else:
        status = Status.PASS
    detail = (
        f"disagreement {k}/{n} = {k / n:.1%} ({rule.confidence:.0%} Wilson "
        f"{interval.low:.1%}..{interval.high:.1%}; allowed {rule.max_disagreement:.1%})"
    )
    figures = {"compared": n, "disagreed": k, "interval": [interval.low, interval.high]}
    return Check("shadow", status, detail, figures=figures)
