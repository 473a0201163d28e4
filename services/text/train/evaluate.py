"""Figures of a text scorer on labelled examples, read the way the gateway decides.

An example is flagged when any category's score reaches that category's REVIEW threshold in the
policy; its category is the highest-scoring one. Figures: flagged-vs-benign precision, recall and
F1; false-positive rate on hard-benign and on everyday benign text; recall on non-English
violations; right category among true positives; and tables per kind and per language.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from modgate.policy import Policy
from modgate.wire import TextItemResult
from services.text.train.data import Example


@dataclass(frozen=True)
class Outcome:
    example: Example
    flagged: bool
    top: str  # highest-scoring category ("" when no score)
    score: float


def outcomes(examples: Sequence[Example], results: Sequence[TextItemResult], policy: Policy) -> list[Outcome]:
    review = {name: c.thresholds.review for name, c in policy.categories.items()}
    out = []
    for example, result in zip(examples, results, strict=True):
        flagged = any(v >= review.get(k, 1.0) for k, v in result.scores.items())
        top, score = max(result.scores.items(), key=lambda kv: kv[1], default=("", 0.0))
        out.append(Outcome(example, flagged, top, score))
    return out


def _ratio(a: int, b: int) -> float | None:
    return a / b if b else None


def figures(rows: Sequence[Outcome]) -> dict[str, float | int | None]:
    tp = sum(1 for r in rows if r.flagged and r.example.violating)
    fp = sum(1 for r in rows if r.flagged and not r.example.violating)
    fn = sum(1 for r in rows if not r.flagged and r.example.violating)
    precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
    f1 = 2 * precision * recall / (precision + recall) if precision and recall else 0.0
    hard = [r for r in rows if r.example.kind == "hard_benign"]
    plain_benign = [r for r in rows if r.example.kind == "benign"]
    foreign = [r for r in rows if r.example.violating and r.example.lang != "en"]
    positives = [r for r in rows if r.flagged and r.example.violating]
    return {
        "items": len(rows),
        "violations": tp + fn,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "hard_benign_fpr": _ratio(sum(r.flagged for r in hard), len(hard)),
        "benign_fpr": _ratio(sum(r.flagged for r in plain_benign), len(plain_benign)),
        "non_english_recall": _ratio(sum(r.flagged for r in foreign), len(foreign)),
        "right_category": _ratio(sum(r.top == r.example.label for r in positives), len(positives)),
    }


def table(rows: Sequence[Outcome], key: str) -> list[tuple[str, int, int, float | None]]:
    """(group, items, flagged, rate) per kind or lang: flagged rate is recall for violations and
    the false-positive rate for benign groups."""
    groups: dict[str, list[Outcome]] = {}
    for r in rows:
        groups.setdefault(getattr(r.example, key), []).append(r)
    return [
        (name, len(g), sum(r.flagged for r in g), _ratio(sum(r.flagged for r in g), len(g)))
        for name, g in sorted(groups.items())
    ]


def language_table(rows: Sequence[Outcome]) -> list[tuple[str, float | None, float | None, int]]:
    """(lang, recall on violations, false-positive rate on benign, items)."""
    out = []
    for lang in sorted({r.example.lang for r in rows}):
        g = [r for r in rows if r.example.lang == lang]
        bad = [r for r in g if r.example.violating]
        good = [r for r in g if not r.example.violating]
        out.append(
            (
                lang,
                _ratio(sum(r.flagged for r in bad), len(bad)),
                _ratio(sum(r.flagged for r in good), len(good)),
                len(g),
            )
        )
    return out


def markdown(name: str, rows: Sequence[Outcome]) -> str:
    f = figures(rows)

    def fmt(v: float | int | None) -> str:
        return "-" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)

    lines = [f"### {name}", "", "| " + " | ".join(f) + " |", "|" + "---|" * len(f)]
    lines.append("| " + " | ".join(fmt(v) for v in f.values()) + " |")
    lines += ["", "| kind | items | flagged | rate |", "|---|---|---|---|"]
    lines += [f"| {k} | {n} | {flagged} | {fmt(rate)} |" for k, n, flagged, rate in table(rows, "kind")]
    lines += ["", "| lang | recall | benign FPR | items |", "|---|---|---|---|"]
    lines += [f"| {k} | {fmt(r)} | {fmt(fp)} | {n} |" for k, r, fp, n in language_table(rows)]
    return "\n".join(lines) + "\n"
