"""Per-category REVIEW thresholds that reach a target precision, proposed as a policy diff.

For category c an item is flagged for c when its fused c score reaches the threshold; precision
is the share of those labelled c. The proposal is the lowest threshold (the most recall) at
which precision holds with the asked confidence: the Wilson lower bound of the flagged items'
precision there is at least the target. A category whose
labelled items cannot reach it keeps its threshold and says why. Tune on one half of a set and
read the other half (`split_halves`), never the items the thresholds were fitted on.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from modgate.policy import Policy
from modgate.tools.canary.stats import wilson
from modgate.tools.evaluate.metrics import ratio
from modgate.tools.evaluate.runner import ScoredItem


def wilson_low(successes: int, total: int, confidence: float) -> float:
    """The one-sided lower bound of a binomial proportion: the low end of the two-sided Wilson
    interval at 2 * confidence - 1 (modgate/tools/canary/stats.py); 0 without items."""
    return wilson(successes, total, 2 * confidence - 1).low if total else 0.0


def split_halves(results: Sequence[ScoredItem]) -> tuple[list[ScoredItem], list[ScoredItem]]:
    """A fixed split by a hash of the item id: (tune, held out)."""
    tune, held_out = [], []
    for r in results:
        (tune if hashlib.sha256(r.item.id.encode()).digest()[0] % 2 == 0 else held_out).append(r)
    return tune, held_out


@dataclass(frozen=True)
class Suggestion:
    category: str
    current_review: float
    review: float | None  # None: the target cannot be reached on this set
    precision: float  # on the tuning items at the proposed threshold
    recall: float
    support: int
    note: str = ""


@dataclass(frozen=True)
class HeldOut:
    category: str
    review: float
    flagged: int
    precision: float
    recall: float


def suggest(
    results: Sequence[ScoredItem],
    policy: Policy,
    *,
    target_precision: float,
    confidence: float = 0.9,
) -> list[Suggestion]:
    scored = [r for r in results if r.decision != "ERROR"]
    out = []
    for name, category in policy.categories.items():
        current = category.thresholds.review
        ranked = sorted(((r.scores.get(name, 0.0), r.item.label == name) for r in scored), reverse=True)
        support = sum(positive for _, positive in ranked)
        if support == 0:
            out.append(Suggestion(name, current, None, 0.0, 0.0, 0, "no items labelled with it"))
            continue
        best: tuple[float, int, int] | None = None
        hits = 0
        for rank, (score, positive) in enumerate(ranked, start=1):
            hits += positive
            # Only at the last item of a run of equal scores: a threshold admits all of them.
            if rank < len(ranked) and ranked[rank][0] == score:
                continue
            if score > 0 and wilson_low(hits, rank, confidence) >= target_precision:
                below = ranked[rank][0] if rank < len(ranked) else 0.0
                best = (_between(below, score), hits, rank)
        if best is None:
            note = (
                f"precision {target_precision} not reached with {confidence:.0%} confidence at any threshold"
            )
            out.append(Suggestion(name, current, None, 0.0, 0.0, support, note))
            continue
        threshold, hit_count, flagged = best
        out.append(
            Suggestion(
                name, current, threshold, ratio(hit_count, flagged), ratio(hit_count, support), support
            )
        )
    return out


def _between(below: float, score: float) -> float:
    """A short number near the middle of (below, score]: admits `score`, not the next lower one,
    and leaves the unseen items between the two as much margin on either side."""
    middle = (below + score) / 2
    for digits in (2, 3, 4, 6):
        candidate = round(middle, digits)
        if below < candidate <= score:
            return candidate
    return score


def held_out_figures(results: Sequence[ScoredItem], suggestions: Sequence[Suggestion]) -> list[HeldOut]:
    scored = [r for r in results if r.decision != "ERROR"]
    figures = []
    for s in suggestions:
        if s.review is None:
            continue
        flagged = [r for r in scored if r.scores.get(s.category, 0.0) >= s.review]
        hits = sum(r.item.label == s.category for r in flagged)
        support = sum(r.item.label == s.category for r in scored)
        figures.append(
            HeldOut(s.category, s.review, len(flagged), ratio(hits, len(flagged)), ratio(hits, support))
        )
    return figures


_CATEGORY = re.compile(r"^  ([a-z0-9_]+):\s*$")
_THRESHOLDS = re.compile(r"^(    thresholds:\s*)\{[^}]*\}\s*$")
_VERSION = re.compile(r"^version:\s*(.+?)\s*$")


def policy_diff(policy_text: str, policy: Policy, suggestions: Sequence[Suggestion], *, filename: str) -> str:
    """A unified diff of the policy file: each suggested category's `thresholds:` line (block kept
    at least the new review threshold) and a new `version` (services refuse mixed versions)."""
    changes = {
        s.category: s.review for s in suggestions if s.review is not None and s.review != s.current_review
    }
    lines = policy_text.splitlines(keepends=True)
    new_lines, current = [], None
    for line in lines:
        if match := _CATEGORY.match(line):
            current = match.group(1)
        elif (match := _THRESHOLDS.match(line)) and current in changes:
            review = changes[current]
            block = max(policy.categories[current].thresholds.block, review)
            line = f"{match.group(1)}{{ review: {review:g}, block: {block:g} }}\n"
        elif (match := _VERSION.match(line)) and changes:
            line = f'version: "{match.group(1).strip(chr(34))}-tuned"\n'
        new_lines.append(line)
    return "".join(difflib.unified_diff(lines, new_lines, fromfile=f"a/{filename}", tofile=f"b/{filename}"))


def to_json(suggestions: Sequence[Suggestion], held_out: Sequence[HeldOut]) -> dict[str, Any]:
    return {"suggestions": [asdict(s) for s in suggestions], "held_out": [asdict(h) for h in held_out]}
