"""The canary report as a table (stdout) and as JSON (--json): the figures per variant, each
check with its numbers, and the decision with the categories that rolled it back."""

from __future__ import annotations

from typing import Any

from modgate.tools.canary.collect import CANARY, STABLE, StoreFigures, VariantFigures
from modgate.tools.canary.decide import Decision, Outcome
from modgate.tools.canary.scrape import MetricFigures
from modgate.tools.store_args import utc

DECISIONS = ("ALLOW", "REVIEW", "BLOCK")
SIDES = (STABLE, CANARY)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def _window(store: StoreFigures) -> str:
    since = utc(store.since) if store.since is not None else "the first"
    until = utc(store.until) if store.until is not None else "now"
    return f"verdicts decided from {since} to {until}"


def _rows(store: StoreFigures, metrics: MetricFigures | None) -> list[tuple[str, ...]]:
    sides = [store.variant(side) for side in SIDES]
    rows: list[tuple[str, ...]] = [("", *SIDES), ("requests", *(str(v.requests) for v in sides))]
    for decision in DECISIONS:
        rows.append((f"  {decision}", *(_share(v, decision) for v in sides)))
    rows.append(("latency p50 ms", *(_ms(v.latency_ms(50)) for v in sides)))
    rows.append(("latency p95 ms", *(_ms(v.latency_ms(95)) for v in sides)))
    for category in sorted(store.categories):
        rows.append((f"flagged {category}", *(_pct(v.flag_rate(category)) for v in sides)))
    if metrics is not None:
        cells = []
        for side in SIDES:
            calls = metrics.calls(side)
            cells.append(f"{_pct(metrics.failures(side) / calls if calls else None)} of {calls}")
        rows.append(("upstream errors", *cells))
    return rows


def _share(figures: VariantFigures, decision: str) -> str:
    count = figures.decisions[decision]
    return f"{count} ({_pct(count / figures.requests if figures.requests else None)})"


def format_report(store: StoreFigures, metrics: MetricFigures | None, outcome: Outcome) -> str:
    rows = _rows(store, metrics)
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    table = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines = [f"canary report: {store.service}, {_window(store)}", *table, "", "checks:"]
    lines += [f"  {c.status.value.upper():<4}  {c.name:<9}  {c.detail}" for c in outcome.checks]
    lines += ["", f"decision: {outcome.decision.value}{_because(outcome)}"]
    return "\n".join(lines)


def _because(outcome: Outcome) -> str:
    if outcome.decision != Decision.ROLLBACK:
        return ""
    categories = outcome.rollback_categories
    others = sorted({c.name for c in outcome.checks if c.status.value == "fail" and c.category is None})
    named = ([f"flag rate of {', '.join(categories)}"] if categories else []) + others
    return f" ({'; '.join(named)})"


def _variant_json(figures: VariantFigures, categories: list[str]) -> dict[str, Any]:
    return {
        "requests": figures.requests,
        "decisions": {d: figures.decisions[d] for d in DECISIONS},
        "latency_ms": {"p50": figures.latency_ms(50), "p95": figures.latency_ms(95)},
        "flag_rate": {c: figures.flag_rate(c) for c in categories},
        "flagged": {c: figures.flags[c] for c in categories},
    }


def report_json(store: StoreFigures, metrics: MetricFigures | None, outcome: Outcome) -> dict[str, Any]:
    categories = sorted(store.categories)
    document: dict[str, Any] = {
        "service": store.service,
        "since": store.since,
        "until": store.until,
        "decision": outcome.decision.value,
        "exit_code": outcome.exit_code,
        "rollback_categories": outcome.rollback_categories,
        "variants": {side: _variant_json(store.variant(side), categories) for side in SIDES},
        "unserved": store.unserved,
        "excluded": store.excluded,
        "checks": [
            {
                "name": c.name,
                "status": c.status.value,
                "category": c.category,
                "detail": c.detail,
                **c.figures,
            }
            for c in outcome.checks
        ],
    }
    if metrics is not None:
        document["metrics"] = {
            "sources": metrics.sources,
            "calls": {side: metrics.calls(side) for side in SIDES},
            "failed_calls": {side: metrics.failures(side) for side in SIDES},
            "shadow": {"compared": metrics.shadow_compared, "disagreed": metrics.shadow_disagreed},
        }
    return document
