"""The statistics the decision uses: Wilson score intervals for a proportion, Newcombe's
hybrid score interval for a difference of two, and nearest-rank percentiles.

Wilson rather than the normal approximation because canary shares are small (a few percent
disagreements, errors near 0) and samples are modest: the Wald interval collapses to [0, 0]
at 0 successes and leaves [0, 1] there, Wilson does neither. Newcombe's method 10 builds the
interval of p2 - p1 from the two Wilson intervals (Newcombe 1998, Statistics in Medicine 17).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist


@dataclass(frozen=True)
class Interval:
    low: float
    high: float

    def excludes(self, value: float) -> bool:
        return value < self.low or value > self.high


def z_for(confidence: float) -> float:
    """The two-sided normal quantile: 1.96 for 0.95."""
    return NormalDist().inv_cdf(1 - (1 - confidence) / 2)


def wilson(successes: int, trials: int, confidence: float) -> Interval:
    """Wilson score interval of successes / trials; [0, 1] without trials."""
    if trials <= 0:
        return Interval(0.0, 1.0)
    z = z_for(confidence)
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return Interval(max(0.0, centre - half), min(1.0, centre + half))


def difference(k1: int, n1: int, k2: int, n2: int, confidence: float) -> Interval:
    """Newcombe's hybrid score interval of k2/n2 - k1/n1 (second minus first)."""
    p1, p2 = k1 / n1, k2 / n2
    first, second = wilson(k1, n1, confidence), wilson(k2, n2, confidence)
    d = p2 - p1
    low = d - math.sqrt((p2 - second.low) ** 2 + (first.high - p1) ** 2)
    high = d + math.sqrt((second.high - p2) ** 2 + (p1 - first.low) ** 2)
    return Interval(max(-1.0, low), min(1.0, high))


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in (0, 100]): the smallest value with at least q% of the
    values at or below it; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]
