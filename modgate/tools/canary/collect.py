"""Per-variant figures of one service from the verdict store: requests, decision mix, flag
rate per category, latency.

A verdict counts for the variant its `models` column names for the service's modality
(speech -> AUDIO, vision -> VISUAL, text -> TEXT); verdicts where that modality did not run
(skipped, or an exact bank hit before any model) count for neither. A category is *flagged*
by a verdict when the verdict's CategoryScore for it has decision REVIEW or BLOCK: fusion sets
that when the fused score reaches the category's review threshold in the policy the verdict
was decided under (or a hash-bank rule raised it), so the flag rate is exactly what callers
saw, under the policy that was live. Latency is decided_at - received_at of the stored record.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from modgate.tools.canary.stats import percentile

if TYPE_CHECKING:
    from modgate.store import ServedRow, VerdictStore

SERVICE_MODALITY = {"speech": "AUDIO", "vision": "VISUAL", "text": "TEXT"}
SERVICES = tuple(SERVICE_MODALITY)
STABLE, CANARY = "stable", "canary"


@dataclass
class VariantFigures:
    requests: int = 0
    decisions: Counter[str] = field(default_factory=Counter)
    flags: Counter[str] = field(default_factory=Counter)  # category -> verdicts that flagged it
    latencies_ms: list[float] = field(default_factory=list)

    def flag_rate(self, category: str) -> float | None:
        return self.flags[category] / self.requests if self.requests else None

    def latency_ms(self, q: float) -> float | None:
        return percentile(self.latencies_ms, q)


@dataclass
class StoreFigures:
    service: str
    since: float | None
    until: float | None
    variants: dict[str, VariantFigures] = field(default_factory=dict)
    categories: set[str] = field(default_factory=set)  # every category a verdict scored
    unserved: int = 0  # verdicts in the window the service's modality did not serve
    excluded: int = 0  # verdicts of the callers left out (evaluation callers pinning a variant)

    def variant(self, name: str) -> VariantFigures:
        return self.variants.setdefault(name, VariantFigures())

    def add(self, row: ServedRow) -> None:
        from modgate.v1 import moderation_pb2 as pb

        served = row.models.get(SERVICE_MODALITY[self.service])
        if served is None:
            self.unserved += 1
            return
        figures = self.variant(served.get("variant") or STABLE)
        figures.requests += 1
        figures.decisions[row.decision] += 1
        figures.latencies_ms.append((row.decided_at - row.received_at) * 1000.0)
        for score in pb.Verdict.FromString(row.verdict).categories:
            self.categories.add(score.category)
            if score.decision in (pb.DECISION_REVIEW, pb.DECISION_BLOCK):
                figures.flags[score.category] += 1


def collect(
    store: VerdictStore,
    service: str,
    *,
    since: float | None,
    until: float | None,
    exclude_callers: frozenset[str] = frozenset(),
) -> StoreFigures:
    """The figures of `service` over the verdicts decided in [since, until], leaving out the
    verdicts of `exclude_callers` (the store does not keep whether a variant was pinned)."""
    if service not in SERVICE_MODALITY:
        raise ValueError(f"unknown service {service!r}: one of {', '.join(SERVICES)}")
    figures = StoreFigures(service, since, until)
    for name in (STABLE, CANARY):
        figures.variant(name)
    for row in store.scan_served(since=since, until=until):
        if row.caller in exclude_callers:
            figures.excluded += 1
        else:
            figures.add(row)
    return figures
