"""The precision-recall curve per category, with the policy's REVIEW and BLOCK thresholds marked
where they sit on it (PNG, matplotlib's Agg backend: no display needed)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from modgate.policy import Policy
from modgate.tools.evaluate.metrics import ratio
from modgate.tools.evaluate.runner import ScoredItem


def pr_points(results: Sequence[ScoredItem], category: str) -> list[tuple[float, float, float]]:
    """(threshold, precision, recall) at every distinct score of `category`, highest first."""
    ranked = sorted(((r.scores.get(category, 0.0), r.item.label == category) for r in results), reverse=True)
    support = sum(positive for _, positive in ranked)
    points, hits = [], 0
    for rank, (score, positive) in enumerate(ranked, start=1):
        hits += positive
        if rank == len(ranked) or ranked[rank][0] != score:
            points.append((score, ratio(hits, rank), ratio(hits, support)))
    return points


def at_threshold(results: Sequence[ScoredItem], category: str, threshold: float) -> tuple[float, float]:
    flagged = [r for r in results if r.scores.get(category, 0.0) >= threshold]
    hits = sum(r.item.label == category for r in flagged)
    support = sum(r.item.label == category for r in results)
    return ratio(hits, len(flagged)), ratio(hits, support)


def write_pr_curves(results: Sequence[ScoredItem], policy: Policy, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scored = [r for r in results if r.decision != "ERROR"]
    categories = [c for c in policy.categories if any(r.item.label == c for r in scored)]
    columns = min(4, max(1, len(categories)))
    rows = max(1, math.ceil(len(categories) / columns))
    figure, axes = plt.subplots(rows, columns, figsize=(4 * columns, 3.6 * rows), squeeze=False)
    for ax in axes.flat[len(categories) :]:
        ax.set_visible(False)
    for ax, name in zip(axes.flat, categories, strict=False):
        points = pr_points(scored, name)
        ax.plot([p[2] for p in points], [p[1] for p in points], drawstyle="steps-post", color="#1f5fa8")
        thresholds = policy.categories[name].thresholds
        for label, value, colour in (
            ("REVIEW", thresholds.review, "#e0a400"),
            ("BLOCK", thresholds.block, "#c0262d"),
        ):
            precision, recall = at_threshold(scored, name, value)
            ax.scatter([recall], [precision], color=colour, zorder=3, label=f"{label} {value:g}")
        ax.set_title(name)
        ax.set_xlabel("recall")
        ax.set_ylabel("precision")
        ax.set_xlim(0, 1.02)
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(loc="lower left", fontsize=8)
    figure.suptitle(f"precision-recall per category, policy {policy.name}@{policy.version}")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path
