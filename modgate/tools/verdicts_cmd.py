"""`modgate verdicts list | show ID | prune`: what the verdict store kept.

    modgate verdicts list --decision BLOCK --since 2h          # newest first, a table
    modgate verdicts list --content-id c-42 --json             # the same rows as JSON
    modgate verdicts show 3f2a...                              # one verdict, readable
    modgate verdicts show 3f2a... --json                       # the whole record
    modgate verdicts prune --older-than-days 30                # delete what is older

Reads the store the gateway writes (--store-url, else MODGATE_STORE_URL, else SQLite at
$MODGATE_HOME/verdicts.db). Exit status: 0; 1 for an unknown verdict id; 2 when the store
cannot be opened (the message names it, password hidden, and what to do) or for bad usage.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import TYPE_CHECKING, Any

from modgate.tools.store_args import (
    EXIT_STORE,
    SINCE_HELP,
    StoreProblem,
    add_store_url,
    open_store,
    shown_url,
    since_arg,
    utc,
)

if TYPE_CHECKING:
    from modgate.store import VerdictRecord, VerdictStore, VerdictSummary

NAME = "modgate verdicts"
DECISIONS = ("ALLOW", "REVIEW", "BLOCK")
COLUMNS = (
    "decided (UTC)",
    "verdict id",
    "decision",
    "risk",
    "policy",
    "content",
    "caller/request",
    "degraded",
    "trace id",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True, metavar="{list,show,prune}")
    listing = sub.add_parser(
        "list", help="stored verdicts, newest first", description="stored verdicts, newest first"
    )
    listing.add_argument("--decision", type=str.upper, choices=DECISIONS, help="only this decision")
    listing.add_argument("--since", type=since_arg, metavar="T", help=SINCE_HELP)
    listing.add_argument("--content-id", metavar="C", help="only verdicts about this content id")
    listing.add_argument("--limit", type=int, default=50, metavar="N", help="at most N rows (default 50)")
    listing.add_argument("--json", action="store_true", help="print the rows as JSON")
    show = sub.add_parser("show", help="one stored verdict", description="one stored verdict, readable")
    show.add_argument("verdict_id", metavar="ID", help="the verdict id (Verdict.verdict_id, `verdicts list`)")
    show.add_argument(
        "--json", action="store_true", help="the whole record: columns, fusion document, Verdict as JSON"
    )
    prune = sub.add_parser(
        "prune", help="delete old verdicts", description="delete verdicts older than N days"
    )
    prune.add_argument(
        "--older-than-days",
        type=float,
        metavar="N",
        help="delete verdicts decided more than N days ago (default: MODGATE_STORE_RETENTION_DAYS, 90)",
    )
    for each in (listing, show, prune):
        add_store_url(each)


def run(args: argparse.Namespace) -> int:
    from modgate.store import StoreUnavailable

    try:
        store = open_store(args.store_url)
    except StoreProblem as exc:
        print(f"{NAME}: {exc}", file=sys.stderr)
        return EXIT_STORE
    try:
        return {"list": _list, "show": _show, "prune": _prune}[args.action](store, args)
    except StoreUnavailable as exc:
        print(
            f"{NAME}: {shown_url(str(store.engine.url))}: {exc}; try again once it is back", file=sys.stderr
        )
        return EXIT_STORE
    finally:
        store.close()


# --- list ------------------------------------------------------------------------------------------


def _list(store: VerdictStore, args: argparse.Namespace) -> int:
    rows = store.summaries(
        decision=args.decision, since=args.since, content_id=args.content_id, limit=max(0, args.limit)
    )
    if args.json:
        print(json.dumps([_summary_json(r) for r in rows], indent=2))
        return 0
    if not rows:
        print("no stored verdicts match", file=sys.stderr)
        return 0
    print(format_table([COLUMNS, *(_cells(r) for r in rows)]))
    return 0


def _summary_json(row: VerdictSummary) -> dict[str, Any]:
    values: dict[str, Any] = dict(row.__dict__)
    values["decided_at_utc"] = utc(row.decided_at)
    return values


def _cells(row: VerdictSummary) -> tuple[str, ...]:
    return (
        utc(row.decided_at),
        row.verdict_id,
        row.decision,
        f"{row.risk:.2f}",
        f"{row.policy_name}@{row.policy_version}",
        row.content_id or "-",
        f"{row.caller}/{row.request_id}",
        "degraded" if row.degraded else "",
        row.trace_id or "-",
    )


def format_table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows
    )


# --- show ------------------------------------------------------------------------------------------


def _show(store: VerdictStore, args: argparse.Namespace) -> int:
    record = store.get(args.verdict_id.strip())
    if record is None:
        print(
            f"{NAME}: no verdict {args.verdict_id!r} in the store; `modgate verdicts list` shows the "
            "stored ones (ids are 32 hex digits, as Verdict.verdict_id)",
            file=sys.stderr,
        )
        return 1
    if args.json:
        print(json.dumps(record_json(record), indent=2))
    else:
        print(format_record(record, color=sys.stdout.isatty()))
    return 0


def record_json(record: VerdictRecord) -> dict[str, Any]:
    """The whole stored record: its columns, the policy (with its document), the fusion
    document, and the Verdict as google.protobuf.json_format writes it."""
    from google.protobuf.json_format import MessageToDict

    from modgate.v1 import moderation_pb2 as pb

    verdict = pb.Verdict.FromString(record.verdict)
    columns = {k: v for k, v in record.__dict__.items() if k not in ("policy", "fusion", "verdict")}
    return {
        **columns,
        "decided_at_utc": utc(record.decided_at),
        "received_at_utc": utc(record.received_at),
        "policy": {
            "name": record.policy.name,
            "version": record.policy.version,
            "digest": record.policy.digest,
            "document": record.policy.document,
        },
        "fusion": record.fusion,
        "verdict": MessageToDict(
            verdict, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
        ),
    }


def format_record(record: VerdictRecord, *, color: bool = False) -> str:
    """The stored facts (when, who, which policy and models, what fusion kept), then the
    verdict as `modgate moderate` prints it."""
    from modgate.tools.moderate_cmd import format_verdict
    from modgate.v1 import moderation_pb2 as pb

    took = record.decided_at - record.received_at
    policy = record.policy
    lines = [
        f"Verdict {record.verdict_id}  decided {utc(record.decided_at)}  (took {took * 1000:.0f} ms)",
        f"Caller {record.caller}  request {record.request_id}  content {record.content_id or '-'}",
        f"Policy {policy.name}@{policy.version}  digest {policy.digest}",
    ]
    models = ", ".join(_model(modality, m) for modality, m in sorted(record.models.items()))
    lines.append(f"Models: {models or '(none ran)'}")
    lines.append(f"Fusion kept: {_fusion_summary(record.fusion)}")
    lines += ["", format_verdict(pb.Verdict.FromString(record.verdict), color=color)]
    return "\n".join(lines)


def _model(modality: str, model: dict[str, str]) -> str:
    words = [modality, model.get("name") or "?", model.get("version") or ""]
    return " ".join(w for w in words if w) + f" ({model.get('variant') or 'stable'})"


def _fusion_summary(fusion: dict[str, Any]) -> str:
    kind = fusion.get("kind", "?")
    if kind == "unfused":
        return f"nothing to re-fuse ({fusion.get('reason', '')})"
    if kind == "short_circuit":
        return f"an exact bank hit decided before any model ({len(fusion.get('exact', []))} hit(s))"
    return (
        f"{len(fusion.get('texts', []))} scored text item(s), {len(fusion.get('frames', []))} frame(s), "
        f"{len(fusion.get('exact', []))} exact bank hit(s) (`modgate replay` re-fuses them)"
    )


# --- prune -----------------------------------------------------------------------------------------


def _prune(store: VerdictStore, args: argparse.Namespace) -> int:
    from modgate.store import StoreSettings

    days = args.older_than_days if args.older_than_days is not None else StoreSettings().retention_days
    if days <= 0:
        print(f"{NAME}: a retention of {days:g} days keeps every verdict: nothing pruned")
        return 0
    cutoff = time.time() - days * 86400
    deleted = store.prune(older_than=cutoff)
    print(f"pruned {deleted} verdict(s) decided before {utc(cutoff)} (older than {days:g} days)")
    return 0
