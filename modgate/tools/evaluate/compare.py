"""Stable vs canary on the same labelled items: deltas with paired bootstrap 95% intervals, the
items whose decision changed, and a recommendation (PROMOTE / ROLLBACK) from those intervals.

Paired: both variants scored the same items, so each bootstrap resample draws item indices once
and recomputes both sides on them; the interval is the 2.5th-97.5th percentile of the deltas.
A category is worse when its delta's whole interval lies below zero and the point drop is at
least `max_drop` (identical models give deltas of exactly zero).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from modgate.tools.evaluate.dataset import BENIGN
from modgate.tools.evaluate.metrics import predicted_label
from modgate.tools.evaluate.runner import ScoredItem

Array = np.ndarray
# (labels, predictions) index arrays of shape (resamples, items) -> one value per resample.
Metric = Callable[[Array, Array], Array]


def _safe(numerator: Array, denominator: Array) -> Array:
    return np.divide(numerator, denominator, out=np.zeros_like(numerator, dtype=float), where=denominator > 0)


def _binary_f1(labels: Array, predicted: Array) -> Array:
    positive, flagged = labels > 0, predicted > 0
    tp = (positive & flagged).sum(axis=-1)
    return _safe(2.0 * tp, 2.0 * tp + (~positive & flagged).sum(axis=-1) + (positive & ~flagged).sum(axis=-1))


def _binary_recall(labels: Array, predicted: Array) -> Array:
    positive = labels > 0
    return _safe((positive & (predicted > 0)).sum(axis=-1).astype(float), positive.sum(axis=-1))


def _false_positive_rate(labels: Array, predicted: Array) -> Array:
    benign = labels == 0
    return _safe((benign & (predicted > 0)).sum(axis=-1).astype(float), benign.sum(axis=-1))


def _category_f1(index: int) -> Metric:
    def metric(labels: Array, predicted: Array) -> Array:
        hits = ((labels == index) & (predicted == index)).sum(axis=-1)
        total = (labels == index).sum(axis=-1) + (predicted == index).sum(axis=-1)
        return _safe(2.0 * hits, total)

    return metric


@dataclass(frozen=True)
class Delta:
    metric: str
    stable: float
    canary: float
    delta: float
    low: float  # 95% bootstrap interval of canary - stable
    high: float

    @property
    def significantly_worse(self) -> bool:
        return self.high < 0


@dataclass(frozen=True)
class ChangedItem:
    id: str
    label: str
    stable: str
    canary: str
    stable_top: str
    canary_top: str


@dataclass(frozen=True)
class Comparison:
    items: int
    deltas: list[Delta]
    changed: list[ChangedItem]
    worse_categories: list[str]
    recommendation: str  # PROMOTE | ROLLBACK

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def compare(
    stable: Sequence[ScoredItem],
    canary: Sequence[ScoredItem],
    categories: Sequence[str],
    *,
    resamples: int = 2000,
    max_drop: float = 0.02,
    seed: int = 0,
) -> Comparison:
    """`stable` and `canary` scored the same items (matched by item id; errors on either side are
    left out of both)."""
    by_id = {r.item.id: r for r in canary if r.decision != "ERROR"}
    pairs = [(s, by_id[s.item.id]) for s in stable if s.decision != "ERROR" and s.item.id in by_id]
    index = {name: i for i, name in enumerate([BENIGN, *categories])}
    labels = np.array([index.get(s.item.label, -1) for s, _ in pairs])
    sides = [np.array([index.get(predicted_label(r), -1) for r in side]) for side in zip(*pairs, strict=True)]
    metrics: dict[str, Metric] = {
        "flagged_vs_benign_f1": _binary_f1,
        "recall": _binary_recall,
        "false_positive_rate": _false_positive_rate,
    }
    metrics.update({f"f1[{c}]": _category_f1(index[c]) for c in categories if (labels == index[c]).any()})
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(pairs), size=(resamples, len(pairs))) if pairs else np.zeros((0, 0), int)
    deltas = [_delta(name, metric, labels, sides, draws) for name, metric in metrics.items()]
    worse = [
        d.metric.removeprefix("f1[").removesuffix("]")
        for d in deltas
        if d.metric.startswith("f1[") and d.significantly_worse and -d.delta >= max_drop
    ]
    overall_worse = any(
        d.significantly_worse and -d.delta >= max_drop for d in deltas if d.metric == "flagged_vs_benign_f1"
    )
    changed = [
        ChangedItem(s.item.id, s.item.label, s.decision, c.decision, predicted_label(s), predicted_label(c))
        for s, c in pairs
        if s.decision != c.decision
    ]
    return Comparison(
        items=len(pairs),
        deltas=deltas,
        changed=changed,
        worse_categories=worse,
        recommendation="ROLLBACK" if worse or overall_worse else "PROMOTE",
    )


def _delta(name: str, metric: Metric, labels: Array, sides: list[Array], draws: Array) -> Delta:
    if not len(labels):
        return Delta(name, 0.0, 0.0, 0.0, 0.0, 0.0)
    stable, canary = (float(metric(labels[None, :], side[None, :])[0]) for side in sides)
    resampled = metric(labels[draws], sides[1][draws]) - metric(labels[draws], sides[0][draws])
    low, high = np.percentile(resampled, [2.5, 97.5])
    return Delta(name, stable, canary, canary - stable, float(low), float(high))
