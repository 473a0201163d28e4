"""`modgate bank`: fill, inspect and export hash banks.

    modgate bank add BANK FILE... --category CAT [--note TEXT]   # hash files as moderation does
    modgate bank import BANK LIST_FILE                           # a ThreatExchange/HMA hash list
    modgate bank list [BANK]
    modgate bank remove BANK ENTRY_ID...
    modgate bank export BANK [-o FILE] [--format csv|lines]

Every subcommand takes --bank-dir (default MODGATE_BANK_DIR, else $MODGATE_HOME/banks).
A running gateway or vision service picks a change up within MODGATE_BANK_RELOAD_INTERVAL_S.
Exit status: 0 done, 1 the operation failed (nothing was changed), 2 bad usage.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from modgate.policy import PDQ_MIN_QUALITY

if TYPE_CHECKING:
    from modgate.banks.entries import BankEntry
    from modgate.banks.store import BankStore, ChangeReport

SOURCE_ADD = "modgate bank add"
LIST_LIMIT = 20


def add_arguments(parser: argparse.ArgumentParser) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--bank-dir",
        type=Path,
        default=None,
        help="bank directory (default: MODGATE_BANK_DIR, else $MODGATE_HOME/banks)",
    )
    sub = parser.add_subparsers(dest="bank_command", required=True, metavar="COMMAND")

    add = sub.add_parser(
        "add", parents=[common], help="hash media files (PDQ of sampled frames, MD5, SHA-256) into a bank"
    )
    add.add_argument("bank")
    add.add_argument("files", nargs="+", type=Path, metavar="FILE")
    add.add_argument("--category", required=True, help="the category the content is banked under")
    add.add_argument("--note", default="", help="free text kept with every entry")
    add.add_argument("--source", default=SOURCE_ADD, help=f"source tag (default: {SOURCE_ADD!r})")
    add.add_argument("--content-id", default=None, help="content id for the entries (default: the file name)")
    add.add_argument(
        "--min-quality",
        type=int,
        default=PDQ_MIN_QUALITY,
        help=f"do not bank frames of lower PDQ quality (default {PDQ_MIN_QUALITY}, as HMA)",
    )
    add.add_argument(
        "--fps",
        type=float,
        default=0.0,
        help="frames a second to sample (default: the gateway's, MODGATE_GATEWAY_FRAME_SAMPLE_FPS); "
        "denser banking tolerates re-uploads sampled at other times",
    )
    add.set_defaults(_bank_run=_add)

    imp = sub.add_parser(
        "import", parents=[common], help="import a ThreatExchange/HMA hash list (CSV, TSV or lines)"
    )
    imp.add_argument("bank")
    imp.add_argument("list_file", type=Path, metavar="LIST_FILE")
    imp.add_argument("--category", default=None, help="category for every entry (default: the list's tags)")
    imp.add_argument(
        "--source", default=None, help="source tag where a row has no collab (default: the file name)"
    )
    imp.add_argument(
        "--signal-type", default=None, help="signal type of rows that name none (pdq, video_md5, ...)"
    )
    imp.set_defaults(_bank_run=_import)

    lst = sub.add_parser("list", parents=[common], help="the banks, or one bank's entries")
    lst.add_argument("bank", nargs="?")
    lst.add_argument(
        "--limit", type=int, default=LIST_LIMIT, help=f"entries to show (default {LIST_LIMIT}; 0: all)"
    )
    lst.set_defaults(_bank_run=_list)

    rm = sub.add_parser("remove", parents=[common], help="remove entries from a bank by entry id")
    rm.add_argument("bank")
    rm.add_argument("entry_ids", nargs="+", metavar="ENTRY_ID")
    rm.set_defaults(_bank_run=_remove)

    exp = sub.add_parser("export", parents=[common], help="print a bank as a hash list")
    exp.add_argument("bank")
    exp.add_argument("-o", "--output", type=Path, default=None, help="write to a file instead of stdout")
    exp.add_argument(
        "--format",
        choices=["csv", "lines"],
        default="csv",
        help="csv: ThreatExchange dataset columns + modgate's (default); lines: '<signal_type> <hash>'",
    )
    exp.set_defaults(_bank_run=_export)


def run(args: argparse.Namespace) -> int:
    # Imported here, not at the top: `modgate` builds every subcommand's parser, and the other
    # commands should not pay for threatexchange, faiss and pdqhash.
    from modgate.banks.config import BankSettings
    from modgate.banks.listfile import ListError
    from modgate.banks.signals import SignalError
    from modgate.banks.snapshot import SnapshotError
    from modgate.banks.store import BankError, BankStore

    store = BankStore(args.bank_dir or BankSettings().dir)
    try:
        return int(args._bank_run(store, args))
    except (BankError, ListError, SnapshotError, SignalError) as exc:
        print(f"modgate bank {args.bank_command}: {exc}", file=sys.stderr)
        return 1


def _summary(report: ChangeReport, verb: str) -> str:
    parts = [f"{verb} {report.added} entries"]
    if report.duplicates:
        parts.append(f"{report.duplicates} already banked (skipped)")
    if report.negative_skipped:
        parts.append(f"{report.negative_skipped} NEGATIVE_CLASS rows skipped")
    return (
        f"bank {report.bank}: {', '.join(parts)} in {report.seconds:.2f} s; "
        f"{report.entries} entries, generation {report.generation}"
    )


def _add(store: BankStore, args: argparse.Namespace) -> int:
    from modgate.banks.entries import utc_now
    from modgate.banks.filehash import MediaHashError, hash_media_file, media_entries

    if args.content_id and len(args.files) > 1:
        print("modgate bank add: --content-id names one file; give one FILE or drop it", file=sys.stderr)
        return 2
    added_at = utc_now()
    entries: list[BankEntry] = []
    for path in args.files:
        try:
            media = hash_media_file(path, fps=args.fps)
        except MediaHashError as exc:
            print(f"modgate bank add: {exc}; nothing was added", file=sys.stderr)
            return 1
        found = media_entries(
            media,
            category=args.category,
            source=args.source,
            added_at=added_at,
            note=args.note,
            content_id=args.content_id,
            min_quality=args.min_quality,
        )
        kept = len(found) - 2
        low = len(media.frames) - kept
        print(
            f"{path}: {media.kind}, {len(media.frames)} frame(s) hashed, {kept} PDQ kept"
            + (f" ({low} under quality {args.min_quality})" if low else "")
            + f"; md5 {media.md5}"
        )
        entries += found
    print(_summary(store.add_entries(args.bank, entries), "added"))
    return 0


def _import(store: BankStore, args: argparse.Namespace) -> int:
    from modgate.banks.entries import utc_now
    from modgate.banks.listfile import ListDefaults
    from modgate.banks.signals import parse_signal_type

    defaults = ListDefaults(
        added_at=utc_now(),
        source=args.source or args.list_file.stem,
        category=args.category,
        signal_type=parse_signal_type(args.signal_type) if args.signal_type else None,
    )
    print(_summary(store.import_list(args.bank, args.list_file, defaults), "imported"))
    return 0


def _list(store: BankStore, args: argparse.Namespace) -> int:
    if args.bank is None:
        names = store.names()
        if not names:
            print(f"no banks in {store.root}")
        for name in names:
            info = store.info(name)
            signals = ", ".join(f"{k} {v}" for k, v in info.signals.items() if v) or "empty"
            print(
                f"{name:24} {info.entries:>9} entries ({signals})  "
                f"generation {info.generation}  {info.written_at}"
            )
        return 0
    info = store.info(args.bank)
    print(
        f"bank {info.name}: {info.entries} entries, generation {info.generation}, written {info.written_at}"
    )
    for shown, entry in enumerate(store.iter_entries(args.bank)):
        if args.limit and shown >= args.limit:
            print(
                f"... {info.entries - shown} more "
                "(--limit 0 shows all, `modgate bank export` prints the list)"
            )
            break
        where = f" @{entry.content_ms} ms" if entry.content_ms is not None else ""
        print(
            f"{entry.entry_id}  {entry.signal_type.value:6} {entry.hash}  {entry.category}  "
            f"{entry.content_id}{where}  {entry.source}  {entry.added_at}  {entry.note}".rstrip()
        )
    return 0


def _remove(store: BankStore, args: argparse.Namespace) -> int:
    report = store.remove(args.bank, args.entry_ids)
    print(
        f"bank {report.bank}: removed {report.removed}; {report.entries} entries, "
        f"generation {report.generation}"
    )
    return 0


def _export(store: BankStore, args: argparse.Namespace) -> int:
    from modgate.banks.listfile import lines_format

    out = args.output.open("wb") if args.output else sys.stdout.buffer
    try:
        if args.format == "csv":
            count = store.export_csv(args.bank, out)
        else:
            count = 0
            for entry in store.iter_entries(args.bank):
                out.write(lines_format(entry).encode())
                count += 1
        out.flush()
    finally:
        if args.output:
            out.close()
    print(f"bank {args.bank}: exported {count} entries", file=sys.stderr)
    return 0
