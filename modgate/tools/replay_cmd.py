"""`modgate replay --policy FILE`: what another policy would have decided on the stored verdicts.

    modgate replay --policy candidate.yaml                    # every stored verdict
    modgate replay --policy candidate.yaml --since 3d --limit 50000 --json-out replay.json

Re-fuses the scores each verdict was decided on (gateway/replay; no model is called) and
prints the decision-change matrix (stored -> replayed, ERROR where the new policy would have
refused the request), the policy fields that changed (re-fused, or needing a rescan because
the stored scores were computed with the old value: those verdicts are tallied apart, not
trustworthy), the categories whose thresholds are newly crossed, the biggest changes with
their new evidence, and the throughput. A progress line goes to stderr on long runs.
--workers N re-fuses in N forked processes while this one reads the store (bench/replay.py
measures both ways; on a machine whose cores are busy, one process is faster).

Exit status 0 whatever changed; 2 when the policy file or the store cannot be used.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from modgate.tools.store_args import (
    EXIT_STORE,
    SINCE_HELP,
    StoreProblem,
    add_store_url,
    open_store,
    since_arg,
)

if TYPE_CHECKING:
    from gateway.replay import ReplayReport

NAME = "modgate replay"
MAX_WORKERS = 4
TARGETS = ("ALLOW", "REVIEW", "BLOCK", "ERROR")
NOT_REFUSED = {
    "unfused": "no fusion ran (split_only gateway): nothing to re-fuse",
    "unknown_record": "a fusion record this version cannot read",
    "models_never_ran": "an exact bank hit short-circuited them; under this policy the models would run",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--policy", type=Path, required=True, metavar="FILE", help="the policy YAML to replay under"
    )
    parser.add_argument("--since", type=since_arg, metavar="T", help=SINCE_HELP)
    parser.add_argument("--limit", type=int, metavar="N", help="at most the N oldest matching verdicts")
    parser.add_argument(
        "--top", type=int, default=10, metavar="K", help="show the K biggest changes (default 10)"
    )
    parser.add_argument(
        "--json-out", type=Path, metavar="PATH", help="also write the whole report as JSON here"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="processes that re-fuse (default 1: this one; 0: one per CPU, at most 4). More help only "
        "where cores are idle: each worker costs its share of reading and pickling the records",
    )
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress line on stderr")
    add_store_url(parser)


def default_workers() -> int:
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(MAX_WORKERS, cpus))


class ProgressLine:
    """`replay: 30,000 of 120,000 verdicts (2,400/s)` on stderr: rewritten in place on a
    terminal, a line every few seconds otherwise; nothing for runs shorter than that."""

    def __init__(self, stream: TextIO = sys.stderr) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.started = self.last = time.monotonic()
        self.shown = False

    def __call__(self, done: int, total: int | None) -> None:
        now = time.monotonic()
        if now - self.last < (0.5 if self.tty else 5.0):
            return
        self.last = now
        rate = done / max(now - self.started, 1e-9)
        line = (
            f"replay: {done:,}"
            + (f" of {total:,}" if total is not None else "")
            + f" verdicts ({rate:,.0f}/s)"
        )
        self.stream.write(("\r\033[K" + line) if self.tty else line + "\n")
        self.stream.flush()
        self.shown = True

    def finish(self) -> None:
        if self.tty and self.shown:
            self.stream.write("\r\033[K")
            self.stream.flush()


def run(args: argparse.Namespace) -> int:
    from gateway.replay import replay
    from modgate.policy import PolicyError, load_policy
    from modgate.store import StoreUnavailable

    try:
        policy = load_policy(args.policy)
    except PolicyError as exc:
        print(f"{NAME}: {exc}", file=sys.stderr)
        return 2
    try:
        store = open_store(args.store_url)
    except StoreProblem as exc:
        print(f"{NAME}: {exc}", file=sys.stderr)
        return EXIT_STORE
    progress = None if args.quiet else ProgressLine()
    try:
        report = replay(
            store,
            policy,
            since=args.since,
            limit=args.limit,
            top=max(0, args.top),
            progress=progress,
            workers=args.workers if args.workers > 0 else default_workers(),
        )
    except StoreUnavailable as exc:
        print(f"{NAME}: the verdict store failed during the replay: {exc}", file=sys.stderr)
        return EXIT_STORE
    finally:
        if progress is not None:
            progress.finish()
        store.close()
    print(format_report(report, args.policy))
    if args.json_out is not None:
        args.json_out.write_text(
            json.dumps({"policy_file": str(args.policy), **report.to_json()}, indent=2) + "\n"
        )
        print(f"\nwrote {args.json_out}")
    return 0


# --- the printed report ------------------------------------------------------------------------------


def format_report(report: ReplayReport, policy_file: Path | str = "") -> str:
    data = report.to_json()
    policy = data["policy"]
    scope = f"since {data['since']}" if data["since"] else "all"
    lines = [
        f"Replayed {data['scanned']:,} stored verdict(s) ({scope}"
        + (f", at most {data['limit']:,}" if data["limit"] is not None else "")
        + f") under {policy['name']}@{policy['version']} (digest {policy['digest']}"
        + (f", {policy_file}" if policy_file else "")
        + f") in {data['seconds']:.2f} s: {data['verdicts_per_s']:,.0f} verdicts/s",
    ]
    trusted = sum(sum(row.values()) for row in data["matrix"].values())
    lines += ["", f"Decision changes, stored -> replayed ({trusted:,} re-fused on stored scores still valid)"]
    lines += matrix_lines(data["matrix"])
    lines += _refusable_lines(data["refusable_changes"])
    lines += _rescan_lines(data["needs_rescan"])
    lines += _not_refused_lines(data["not_refused"], data["errors"])
    lines += _threshold_lines(data["thresholds"])
    lines += _top_lines(data["top_changes"])
    return "\n".join(lines)


def matrix_lines(matrix: dict[str, dict[str, int]]) -> list[str]:
    if not matrix:
        return ["  (none)"]
    width = max(7, *(len(f"{n:,}") for row in matrix.values() for n in row.values()))
    lines = ["  stored \\ replayed " + "".join(t.rjust(width + 2) for t in TARGETS)]
    for stored, row in matrix.items():
        lines.append(f"  {stored:<18} " + "".join(f"{row.get(t, 0):,}".rjust(width + 2) for t in TARGETS))
    moves = [(f"{s}->{t}", n) for s, row in matrix.items() for t, n in row.items() if n and t != s]
    total = sum(sum(row.values()) for row in matrix.values())
    changed = sum(n for _, n in moves)
    share = f" ({changed / total:.1%})" if total else ""
    lines.append(
        f"  {changed:,} changed{share}" + (": " + ", ".join(f"{m} {n:,}" for m, n in moves) if moves else "")
    )
    return lines


def _short(value: Any, limit: int = 60) -> str:
    text = "(absent)" if value is None else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _refusable_lines(changes: list[dict[str, Any]]) -> list[str]:
    if not changes:
        return []
    lines = ["", "Re-fused under the new values"]
    lines += [f"  {c['path']}: {_short(c['old'])} -> {_short(c['new'])}  ({c['why']})" for c in changes]
    return lines


def _rescan_lines(rescan: dict[str, Any]) -> list[str]:
    if not rescan["fields"]:
        return []
    lines = ["", "Needs a rescan: stored scores were computed with the old value"]
    for f in rescan["fields"]:
        lines.append(
            f"  {f['path']}: {f['verdicts']:,} verdict(s) hold {'/'.join(f['scopes'])} scores it changes"
            f"  ({f['why']}; was {_short(f['old'], 40)}, under {', '.join(f['policies'])})"
        )
    if rescan["verdicts"]:
        lines.append(
            f"  those {rescan['verdicts']:,} verdict(s), replayed anyway and not trustworthy "
            "(kept out of the matrix above):"
        )
        lines += ["  " + line for line in matrix_lines(rescan["matrix"])]
    return lines


def _not_refused_lines(not_refused: dict[str, int], errors: dict[str, int]) -> list[str]:
    lines = [f"  {n:,} {NOT_REFUSED.get(kind, kind)}" for kind, n in not_refused.items()]
    lines += [f"  ERROR {n:,}: {message}" for message, n in errors.items()]
    return ["", "Not re-fused, or no verdict under the new policy", *lines] if lines else []


def _threshold_lines(thresholds: dict[str, dict[str, int]]) -> list[str]:
    if not thresholds:
        return []
    lines = ["", "Thresholds crossed (verdicts on stored scores still valid)"]
    for category, counts in thresholds.items():
        parts = [f"{name.replace('_', ' ')} {n:,}" for name, n in sorted(counts.items())]
        lines.append(f"  {category:<12} " + ", ".join(parts))
    return lines


def _top_lines(changes: list[dict[str, Any]]) -> list[str]:
    if not changes:
        return []
    lines = ["", "Biggest changes"]
    for i, c in enumerate(changes, 1):
        flag = "  [needs a rescan]" if c["needs_rescan"] else ""
        lines.append(
            f"  {i}. {c['verdict_id']}  {c['stored']} -> {c['replayed']}  risk {c['stored_risk']:.2f} -> "
            f"{c['replayed_risk']:.2f}  content {c['content_id'] or '-'}  decided {c['decided_at']}{flag}"
        )
        for e in c["evidence"]:
            when = f"{_mmss(e['start_ms'])}-{_mmss(e['end_ms'])}" if e["end_ms"] else ""
            snippet = " ".join(e["snippet"].split())[:60]
            lines.append(
                f"       {e['modality']:<6} {when:<15} {e['category']} {e['score']:.2f} '{snippet}'"
                f"  [{e['source']}, {e['signal']}]"
            )
    return lines


def _mmss(ms: int) -> str:
    minutes, rest = divmod(ms, 60_000)
    return f"{minutes:02d}:{rest / 1000:04.1f}"
