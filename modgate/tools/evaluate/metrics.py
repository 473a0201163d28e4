"""The figures of an evaluation: flagged-vs-benign and per-category precision / recall / F1, the
right category, the confusion matrix, which modality decided, latency. Pure functions of the
scored items (no I/O), so a test can recompute every one of them by brute force.

Definitions (the report's glossary repeats them):
- flagged: the verdict is REVIEW or BLOCK; positive: the label is a category (not benign).
- predicted category: the flagged verdict's highest-scoring category; ALLOW predicts benign.
- per category c: precision = flagged as c and labelled c / flagged as c; recall = flagged as c
  and labelled c / labelled c; `flag recall` = flagged at all / labelled c.
- right category: flagged positives whose predicted category is their label / flagged positives.
- items the gateway refused (decision ERROR) are counted, never scored.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from modgate.tools.evaluate.dataset import BENIGN
from modgate.tools.evaluate.runner import ScoredItem


def ratio(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator else 0.0


def f1(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


@dataclass(frozen=True)
class BinaryFigures:
    tp: int
    fp: int
    fn: int
    tn: int
    precision: float
    recall: float
    f1: float
    false_positive_rate: float

    @classmethod
    def of(cls, tp: int, fp: int, fn: int, tn: int) -> BinaryFigures:
        precision, recall = ratio(tp, tp + fp), ratio(tp, tp + fn)
        return cls(tp, fp, fn, tn, precision, recall, f1(precision, recall), ratio(fp, fp + tn))


@dataclass(frozen=True)
class CategoryFigures:
    category: str
    support: int  # items labelled with it
    predicted: int  # items flagged with it as the top category
    precision: float
    recall: float
    f1: float
    flag_recall: float


@dataclass(frozen=True)
class Latency:
    count: int
    p50_ms: float
    p95_ms: float
    mean_ms: float
    max_ms: float


@dataclass(frozen=True)
class Figures:
    items: int
    scored: int
    errors: int
    flagged_vs_benign: BinaryFigures
    right_category: float
    categories: list[CategoryFigures]
    macro_f1: float
    confusion: dict[str, dict[str, int]]  # label -> predicted -> count
    decided_by: dict[str, int]  # modality -> flagged verdicts it carried
    by_kind: dict[str, BinaryFigures]  # "text" / "media"
    latency: Latency
    expected_decision_agreement: float | None  # over items that name a decision
    error_messages: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def predicted_label(scored: ScoredItem) -> str:
    return scored.top_category if scored.flagged else BENIGN


def binary(results: Sequence[ScoredItem]) -> BinaryFigures:
    counts: Counter[tuple[bool, bool]] = Counter((r.item.label != BENIGN, r.flagged) for r in results)
    return BinaryFigures.of(
        tp=counts[True, True], fp=counts[False, True], fn=counts[True, False], tn=counts[False, False]
    )


def category_figures(results: Sequence[ScoredItem], category: str) -> CategoryFigures:
    labelled = [r for r in results if r.item.label == category]
    predicted = [r for r in results if predicted_label(r) == category]
    hits = sum(r.item.label == category for r in predicted)
    precision, recall = ratio(hits, len(predicted)), ratio(hits, len(labelled))
    return CategoryFigures(
        category=category,
        support=len(labelled),
        predicted=len(predicted),
        precision=precision,
        recall=recall,
        f1=f1(precision, recall),
        flag_recall=ratio(sum(r.flagged for r in labelled), len(labelled)),
    )


def latency(results: Sequence[ScoredItem]) -> Latency:
    values = np.array([r.latency_ms for r in results], dtype=float)
    if values.size == 0:
        return Latency(0, 0.0, 0.0, 0.0, 0.0)
    return Latency(
        count=int(values.size),
        p50_ms=float(np.percentile(values, 50)),
        p95_ms=float(np.percentile(values, 95)),
        mean_ms=float(values.mean()),
        max_ms=float(values.max()),
    )


def confusion(results: Sequence[ScoredItem], categories: Sequence[str]) -> dict[str, dict[str, int]]:
    labels = [BENIGN, *categories]
    matrix = {label: dict.fromkeys(labels, 0) for label in labels}
    for r in results:
        row = matrix.setdefault(r.item.label, dict.fromkeys(labels, 0))
        predicted = predicted_label(r)
        row[predicted] = row.get(predicted, 0) + 1
    return matrix


def figures(results: Sequence[ScoredItem], categories: Sequence[str]) -> Figures:
    scored = [r for r in results if r.decision != "ERROR"]
    errors = [r for r in results if r.decision == "ERROR"]
    per_category = [category_figures(scored, c) for c in categories]
    supported = [c for c in per_category if c.support]
    flagged_positives = [r for r in scored if r.flagged and r.item.label != BENIGN]
    named = [r for r in scored if r.item.expected_decision]
    return Figures(
        items=len(results),
        scored=len(scored),
        errors=len(errors),
        flagged_vs_benign=binary(scored),
        right_category=ratio(
            sum(r.top_category == r.item.label for r in flagged_positives), len(flagged_positives)
        ),
        categories=per_category,
        macro_f1=sum(c.f1 for c in supported) / len(supported) if supported else 0.0,
        confusion=confusion(scored, categories),
        decided_by=dict(Counter(r.decided_by for r in scored if r.flagged)),
        by_kind={
            kind: binary([r for r in scored if r.item.kind == kind])
            for kind in sorted({r.item.kind for r in scored})
        },
        latency=latency([r for r in scored if r.latency_ms > 0]),
        expected_decision_agreement=(
            ratio(sum(r.decision == r.item.expected_decision for r in named), len(named)) if named else None
        ),
        error_messages=sorted({r.error for r in errors})[:10],
    )
