"""The evaluation report: markdown for people, JSON for machines (every item's result included,
so any figure can be recomputed), the PR-curve PNG beside them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modgate.tools.evaluate.compare import Comparison
from modgate.tools.evaluate.dataset import BENIGN
from modgate.tools.evaluate.metrics import BinaryFigures, Figures
from modgate.tools.evaluate.runner import ScoredItem


@dataclass
class Run:
    """One variant's pass over the set (or the stored verdicts of --from-reviews)."""

    name: str  # "routed", "stable", "canary", "reviews"
    results: list[ScoredItem]
    figures: Figures


@dataclass
class Report:
    dataset: str
    policy: str
    runs: list[Run]
    comparison: Comparison | None = None
    thresholds: dict[str, Any] | None = None
    policy_diff: str = ""
    files: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "policy": self.policy,
            "runs": [
                {
                    "name": run.name,
                    "figures": run.figures.to_json(),
                    "items": [item_json(r) for r in run.results],
                }
                for run in self.runs
            ],
            "comparison": self.comparison.to_json() if self.comparison else None,
            "thresholds": self.thresholds,
            "files": self.files,
        }


def item_json(r: ScoredItem) -> dict[str, Any]:
    return {
        "id": r.item.id,
        "kind": r.item.kind,
        "label": r.item.label,
        "decision": r.decision,
        "top_category": r.top_category if r.flagged else BENIGN,
        "scores": {c: round(s, 6) for c, s in r.scores.items()},
        "decided_by": r.decided_by,
        "latency_ms": round(r.latency_ms, 3),
        "variants": r.variants,
        "verdict_id": r.verdict_id,
        "error": r.error,
    }


def _binary_row(name: str, b: BinaryFigures) -> str:
    return (
        f"| {name} | {b.tp + b.fn} | {b.fp + b.tn} | {b.precision:.3f} | {b.recall:.3f} | {b.f1:.3f} "
        f"| {b.false_positive_rate:.3f} |"
    )


def run_markdown(run: Run) -> list[str]:
    f = run.figures
    lines = [
        f"## Run: {run.name}",
        "",
        f"{f.items} items, {f.scored} scored, {f.errors} refused by the gateway.",
        "",
        "| flagged vs benign | positives | benign | precision | recall | F1 | false-positive rate |",
        "|---|---|---|---|---|---|---|",
        _binary_row("all", f.flagged_vs_benign),
        *(_binary_row(kind, b) for kind, b in f.by_kind.items()),
        "",
        f"Right category: {f.right_category:.3f} of flagged positives. "
        f"Macro F1 over categories: {f.macro_f1:.3f}.",
        "",
        "| category | support | flagged as it | precision | recall | F1 | flagged at all |",
        "|---|---|---|---|---|---|---|",
        *(
            f"| {c.category} | {c.support} | {c.predicted} | {c.precision:.3f} | {c.recall:.3f} | {c.f1:.3f} "
            f"| {c.flag_recall:.3f} |"
            for c in f.categories
        ),
        "",
        "Confusion matrix (rows: label, columns: predicted):",
        "",
    ]
    columns = list(next(iter(f.confusion.values()), {}))
    lines += ["| label | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    lines += [
        f"| {label} | " + " | ".join(str(row.get(c, 0)) for c in columns) + " |"
        for label, row in f.confusion.items()
    ]
    decided = ", ".join(f"{m} {n}" for m, n in sorted(f.decided_by.items())) or "none"
    lat = f.latency
    lines += [
        "",
        f"Which modality decided (flagged verdicts): {decided}.",
        "",
        f"Latency over {lat.count} calls: p50 {lat.p50_ms:.1f} ms, p95 {lat.p95_ms:.1f} ms, "
        f"mean {lat.mean_ms:.1f} ms, max {lat.max_ms:.1f} ms.",
    ]
    if f.expected_decision_agreement is not None:
        lines += [
            "",
            f"Expected decision matched on {f.expected_decision_agreement:.3f} of the items naming one.",
        ]
    if f.error_messages:
        lines += ["", "Refusals:", *(f"- {m}" for m in f.error_messages)]
    return [*lines, ""]


def comparison_markdown(c: Comparison) -> list[str]:
    lines = [
        "## Stable vs canary",
        "",
        f"{c.items} items scored by both. Recommendation: **{c.recommendation}**"
        + (f" (worse: {', '.join(c.worse_categories)})" if c.worse_categories else ""),
        "",
        "| metric | stable | canary | delta | 95% interval |",
        "|---|---|---|---|---|",
        *(
            f"| {d.metric} | {d.stable:.3f} | {d.canary:.3f} | {d.delta:+.3f} "
            f"| [{d.low:+.3f}, {d.high:+.3f}] |"
            for d in c.deltas
        ),
        "",
        f"Decisions changed on {len(c.changed)} items:",
        "",
    ]
    if c.changed:
        lines += ["| item | label | stable | canary |", "|---|---|---|---|"]
        lines += [
            f"| {i.id} | {i.label} | {i.stable} ({i.stable_top}) | {i.canary} ({i.canary_top}) |"
            for i in c.changed[:100]
        ]
    return [*lines, ""]


def thresholds_markdown(thresholds: dict[str, Any], diff: str) -> list[str]:
    lines = [
        "## Suggested REVIEW thresholds",
        "",
        f"Target precision {thresholds['target_precision']} with {thresholds['confidence']:.0%} confidence, "
        f"fitted on {thresholds['tuned_on']} items, read on {thresholds['held_out_items']} held-out items.",
        "",
        "| category | current | suggested | tune precision | tune recall "
        "| held-out precision | held-out recall |",
        "|---|---|---|---|---|---|---|",
    ]
    held = {h["category"]: h for h in thresholds["held_out"]}
    for s in thresholds["suggestions"]:
        h = held.get(s["category"])
        suggested = f"{s['review']:g}" if s["review"] is not None else f"- ({s['note']})"
        tail = f"{h['precision']:.3f} | {h['recall']:.3f}" if h else "- | -"
        lines.append(
            f"| {s['category']} | {s['current_review']:g} | {suggested} | {s['precision']:.3f} "
            f"| {s['recall']:.3f} | {tail} |"
        )
    if diff:
        lines += ["", "```diff", diff.rstrip("\n"), "```"]
    return [*lines, ""]


def markdown(report: Report) -> str:
    lines = [f"# modgate eval: {report.dataset}", "", f"Policy {report.policy}.", ""]
    for run in report.runs:
        lines += run_markdown(run)
    if report.comparison is not None:
        lines += comparison_markdown(report.comparison)
    if report.thresholds is not None:
        lines += thresholds_markdown(report.thresholds, report.policy_diff)
    if report.files:
        lines += ["Files: " + ", ".join(f"{k} `{v}`" for k, v in report.files.items()), ""]
    return "\n".join(lines)


def write(report: Report, out: Path, runs_for_plot: Sequence[Run]) -> dict[str, Path]:

    out.mkdir(parents=True, exist_ok=True)
    paths = {"markdown": out / "report.md", "json": out / "report.json"}
    for run in runs_for_plot:
        paths[f"pr_{run.name}"] = out / f"pr-{run.name}.png"
    if report.policy_diff:
        paths["policy_diff"] = out / "thresholds.diff"
        paths["policy_diff"].write_text(report.policy_diff, encoding="utf-8")
    report.files = {k: str(v) for k, v in paths.items()}
    return paths


def finish(report: Report, out: Path, policy: Any) -> dict[str, Path]:
    """Write every file of the report under `out`."""
    from modgate.tools.evaluate.plots import write_pr_curves

    paths = write(report, out, report.runs)
    for run in report.runs:
        write_pr_curves(run.results, policy, paths[f"pr_{run.name}"])
    paths["markdown"].write_text(markdown(report), encoding="utf-8")
    paths["json"].write_text(json.dumps(report.to_json(), indent=1), encoding="utf-8")
    return paths
