"""`modgate eval DATASET`: a labelled set through the gateway, reported per category.

    modgate eval set.jsonl                        # routed as product traffic is
    modgate eval set.jsonl --variant canary       # pinned (a pin_variant token)
    modgate eval set.jsonl --compare              # both variants; exit 2 when the canary is worse
    modgate eval set.jsonl --suggest-thresholds --target-precision 0.9
    modgate eval --from-reviews                   # the review console's labels on stored verdicts

Writes report.md, report.json and pr-<run>.png (and thresholds.diff) under --out.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from modgate.client import DEFAULT_TARGET
from modgate.tools.store_args import StoreProblem, add_store_url, since_arg

# --compare: 0 PROMOTE, 2 ROLLBACK (as `modgate canary report`); any failure to evaluate: 3.
EXIT_ROLLBACK = 2
EXIT_PROBLEM = 3


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", nargs="?", type=Path, help="JSONL items or a TSV of label<TAB>text")
    parser.add_argument(
        "--gateway",
        default=os.environ.get("MODGATE_GATEWAY_ADDR", DEFAULT_TARGET),
        help=f"gateway address host:port (default $MODGATE_GATEWAY_ADDR or {DEFAULT_TARGET})",
    )
    parser.add_argument("--token", default=os.environ.get("MODGATE_TOKEN", ""), help="bearer token")
    parser.add_argument("--concurrency", "-n", type=int, default=4, help="concurrent callers (default 4)")
    parser.add_argument("--timeout", type=float, default=120.0, help="deadline per item in seconds")
    parser.add_argument("--policy", default="default", help="policy name (default: default)")
    parser.add_argument(
        "--policy-dir",
        type=Path,
        default=None,
        help="policy files (default $MODGATE_POLICY_DIR or the packaged)",
    )
    parser.add_argument("--variant", choices=["stable", "canary"], help="pin the model variant")
    parser.add_argument("--compare", action="store_true", help="run stable and canary, report deltas")
    parser.add_argument("--max-drop", type=float, default=0.02, help="--compare: F1 drop that counts (0.02)")
    parser.add_argument("--suggest-thresholds", action="store_true", help="propose REVIEW thresholds")
    parser.add_argument("--target-precision", type=float, default=0.9, help="for --suggest-thresholds")
    parser.add_argument("--confidence", type=float, default=0.9, help="one-sided confidence of the precision")
    parser.add_argument("--from-reviews", action="store_true", help="reviewers' labels on stored verdicts")
    parser.add_argument("--since", type=since_arg, default=None, help="--from-reviews: labels since T")
    add_store_url(parser)
    parser.add_argument("--out", type=Path, default=Path("eval-report"), help="report directory")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from modgate.tools.evaluate.dataset import DatasetError
    from modgate.tools.evaluate.session import EvalProblem, evaluate

    problem = _usage_problem(args)
    if problem:
        print(f"modgate eval: {problem}", file=sys.stderr)
        return EXIT_PROBLEM
    try:
        report, paths = evaluate(args)
    except (DatasetError, EvalProblem) as exc:
        print(f"modgate eval: {exc}", file=sys.stderr)
        return EXIT_PROBLEM
    except StoreProblem as exc:
        print(f"modgate eval: {exc}", file=sys.stderr)
        return EXIT_PROBLEM
    print(paths["markdown"].read_text(encoding="utf-8"))
    print(f"report: {paths['markdown']} {paths['json']}", file=sys.stderr)
    if report.comparison is not None and report.comparison.recommendation == "ROLLBACK":
        return EXIT_ROLLBACK
    return 0


def _usage_problem(args: argparse.Namespace) -> str:
    if args.from_reviews == (args.dataset is not None):
        return "give a DATASET or --from-reviews (one of them)"
    if args.compare and (args.variant or args.from_reviews):
        return "--compare runs both variants itself: drop --variant / --from-reviews"
    if not 0 < args.target_precision < 1 or not 0.5 <= args.confidence < 1:
        return "--target-precision is in (0, 1) and --confidence in [0.5, 1)"
    if args.concurrency < 1:
        return "--concurrency is at least 1"
    return ""
