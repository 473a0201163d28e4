"""One `modgate eval` invocation: which runs, then the figures, the comparison, the thresholds
and the files. The only part that knows about command-line arguments."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from modgate.policy import DEFAULT_POLICY_DIR, Policy, PolicyError, load_policies
from modgate.tools.evaluate import thresholds as tuning
from modgate.tools.evaluate.compare import compare
from modgate.tools.evaluate.dataset import BENIGN, EvalItem, load_dataset
from modgate.tools.evaluate.metrics import figures
from modgate.tools.evaluate.report import Report, Run, finish
from modgate.tools.evaluate.runner import RunSettings, ScoredItem, run_items, scored_from_verdict
from modgate.v1 import moderation_pb2 as pb


class EvalProblem(ValueError):
    """An evaluation that cannot run as asked; the message says why and what to do."""


def policy_source(args: argparse.Namespace) -> tuple[Policy, Path]:
    directory = Path(args.policy_dir or os.environ.get("MODGATE_POLICY_DIR") or DEFAULT_POLICY_DIR)
    try:
        policies = load_policies(directory)
    except PolicyError as exc:
        raise EvalProblem(str(exc)) from None
    if args.policy not in policies:
        raise EvalProblem(f"policy {args.policy!r} is not in {directory} ({', '.join(sorted(policies))})")
    for path in sorted(directory.glob("*.yaml")):
        if args.policy in load_policies_file(path):
            return policies[args.policy], path
    raise EvalProblem(f"no file in {directory} holds policy {args.policy!r}")


def load_policies_file(path: Path) -> set[str]:
    import yaml

    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return {str(data.get("name", ""))} if isinstance(data, dict) else set()


def from_reviews(args: argparse.Namespace) -> list[ScoredItem]:
    """Reviewers' labels as ground truth for the verdicts they reviewed, scored as stored (the
    store keeps no media, so nothing is sent to the models again)."""
    from modgate.store.labels import labelled_verdicts
    from modgate.tools.store_args import open_store

    store = open_store(args.store_url)
    try:
        results = []
        for entry in labelled_verdicts(store, since=args.since):
            label = entry.label.category if entry.label.decision == "BLOCK" else BENIGN
            item = EvalItem(id=entry.label.verdict_id, label=label, text=entry.content_id)
            results.append(scored_from_verdict(item, pb.Verdict.FromString(entry.verdict), 0.0))
    finally:
        store.close()
    if not results:
        raise EvalProblem("the verdict store holds no reviewed verdicts (label some in the review console)")
    return results


def evaluate(args: argparse.Namespace) -> tuple[Report, dict[str, Path]]:
    policy, policy_path = policy_source(args)
    categories = list(policy.categories)
    settings = RunSettings(
        target=args.gateway,
        token=args.token or None,
        concurrency=args.concurrency,
        timeout_s=args.timeout,
        policy=args.policy,
        progress=not args.quiet,
    )
    if args.from_reviews:
        runs = [Run("reviews", results := from_reviews(args), figures(results, categories))]
        dataset = "reviewed verdicts in the store"
    else:
        items = load_dataset(args.dataset, set(categories))
        dataset = str(args.dataset)
        variants = ["stable", "canary"] if args.compare else [args.variant or ""]
        runs = []
        for variant in variants:
            results = run_items(items, _with_variant(settings, variant))
            runs.append(Run(variant or "routed", results, figures(results, categories)))
    report = Report(dataset=dataset, policy=f"{policy.name}@{policy.version}", runs=runs)
    if args.compare:
        report.comparison = compare(runs[0].results, runs[1].results, categories, max_drop=args.max_drop)
    if args.suggest_thresholds:
        tune, held = tuning.split_halves(runs[0].results)
        suggestions = tuning.suggest(
            tune, policy, target_precision=args.target_precision, confidence=args.confidence
        )
        report.thresholds = {
            "target_precision": args.target_precision,
            "confidence": args.confidence,
            "tuned_on": len(tune),
            "held_out_items": len(held),
            **tuning.to_json(suggestions, tuning.held_out_figures(held, suggestions)),
        }
        text = policy_path.read_text(encoding="utf-8")
        report.policy_diff = tuning.policy_diff(text, policy, suggestions, filename=policy_path.name)
    return report, finish(report, args.out, policy)


def _with_variant(settings: RunSettings, variant: str) -> RunSettings:
    from dataclasses import replace

    return replace(settings, variant=variant)
