"""`modgate trace TRACE_ID` / `modgate trace --last`: print a stored trace as a waterfall.

Reads the local trace store's SQLite file (what `modgate up` writes). One line per span:
start offset and duration in ms, a bar on the trace's time axis, the service, the span name
indented under its parent, and the attributes that explain the time (batch size, model,
variant, retries, breaker, decision, errors). A span whose parent never arrived is shown at
the root, marked ``(orphan: parent <id> missing)``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modgate.tools.tracestore import StoredSpan, TraceStore, default_db_path

BAR_WIDTH = 32
NAME_WIDTH = 52

# Span attribute -> label, in display order. Other modgate.* attributes follow, unprefixed.
_KEY_ATTRIBUTES: tuple[tuple[str, str], ...] = (
    ("modgate.modality", "modality"),
    ("modgate.variant", "variant"),
    ("modgate.model.id", "model"),
    ("modgate.batch_size", "batch"),
    ("modgate.stream_count", "streams"),
    ("modgate.frame_count", "frames"),
    ("modgate.retries", "retries"),
    ("modgate.breaker.state", "breaker"),
    ("modgate.decision", "decision"),
    ("http.response.status_code", "http"),
    ("http.status_code", "http"),
    ("rpc.grpc.status_code", "grpc_code"),
    ("error.type", "error"),
)
_SKIPPED_MODGATE = {"modgate.request_id"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("trace_id", nargs="?", help="trace id (32 hex digits, or a unique prefix)")
    parser.add_argument("--last", action="store_true", help="show the most recent trace")
    parser.add_argument(
        "--db",
        type=Path,
        default=None,
        help="trace database (default: MODGATE_TRACE_DB, else $MODGATE_HOME/traces.db, "
        "else ~/.modgate/traces.db; `modgate up` writes there)",
    )
    parser.add_argument("--json", action="store_true", help="print the spans as JSON instead")
    parser.add_argument(
        "--wait",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="wait up to this long for the trace (and missing parents) to arrive; exporters batch",
    )


def run(args: argparse.Namespace) -> int:
    if bool(args.trace_id) == bool(args.last):
        print("modgate trace: give a TRACE_ID or --last (not both)", file=sys.stderr)
        return 2
    db_path: Path = args.db or default_db_path()
    deadline = time.monotonic() + max(0.0, args.wait)
    while not db_path.exists():
        if time.monotonic() >= deadline:
            print(
                f"modgate trace: no trace database at {db_path}. Start the stack with `modgate up` "
                "(it runs the trace store), or pass --db / set MODGATE_TRACE_DB.",
                file=sys.stderr,
            )
            return 1
        time.sleep(0.2)
    with TraceStore(db_path) as store:
        trace_id, error = _find_trace(store, args.trace_id, args.last, deadline)
        if trace_id is None:
            print(f"modgate trace: {error}", file=sys.stderr)
            return 1
        spans = _wait_for_complete(store, trace_id, deadline)
    if args.json:
        print(json.dumps(to_json(trace_id, spans), indent=2))
    else:
        print(render_waterfall(trace_id, spans))
    return 0


def _find_trace(
    store: TraceStore, requested: str | None, last: bool, deadline: float
) -> tuple[str | None, str]:
    while True:
        if last:
            found = store.last_trace_id()
            if found:
                return found, ""
            error = f"no traces stored in {store.path} yet (are the processes exporting to the store?)"
        else:
            assert requested is not None
            wanted = requested.strip().lower().removeprefix("0x").replace("-", "")
            matches = store.resolve_trace_id(wanted)
            if len(matches) == 1:
                return matches[0], ""
            if len(matches) > 1:
                return None, f"trace id prefix {requested!r} is ambiguous: give more digits"
            recent = ", ".join(store.trace_ids(3)) or "none"
            error = f"trace {requested!r} not found in {store.path} (most recent: {recent})"
        if time.monotonic() >= deadline:
            return None, error
        time.sleep(0.2)


def _wait_for_complete(store: TraceStore, trace_id: str, deadline: float) -> list[StoredSpan]:
    """Spans of the trace; with --wait, until every parent has arrived and the count settles."""
    spans = store.spans_for_trace(trace_id)
    while time.monotonic() < deadline:
        ids = {s.span_id for s in spans}
        if all(not s.parent_span_id or s.parent_span_id in ids for s in spans):
            time.sleep(0.3)  # a last batch may still be in flight
            again = store.spans_for_trace(trace_id)
            if len(again) == len(spans):
                return again
            spans = again
            continue
        time.sleep(0.2)
        spans = store.spans_for_trace(trace_id)
    return spans


# --- tree + rendering -------------------------------------------------------------------


@dataclass
class Node:
    span: StoredSpan
    depth: int = 0
    orphan: bool = False  # parent span id set but not stored
    children: list[Node] = field(default_factory=list)


def build_tree(spans: list[StoredSpan]) -> list[Node]:
    """Roots (true roots first, then orphans), each with children ordered by start time."""
    nodes = {s.span_id: Node(s) for s in spans}
    roots: list[Node] = []
    for node in sorted(nodes.values(), key=lambda n: (n.span.start_ns, -n.span.end_ns)):
        parent_id = node.span.parent_span_id
        if parent_id and parent_id in nodes and parent_id != node.span.span_id:
            nodes[parent_id].children.append(node)
        else:
            node.orphan = bool(parent_id)
            roots.append(node)
    roots.sort(key=lambda n: (n.orphan, n.span.start_ns))

    def set_depth(node: Node, depth: int) -> None:
        node.depth = depth
        for child in node.children:
            set_depth(child, depth + 1)

    for root in roots:
        set_depth(root, 0)
    return roots


def walk(roots: list[Node]) -> list[tuple[Node, str]]:
    """Depth-first order with the tree-drawing prefix for each node."""
    out: list[tuple[Node, str]] = []

    def visit(node: Node, prefix: str, is_last: bool, is_root: bool) -> None:
        out.append((node, "" if is_root else prefix + ("└─ " if is_last else "├─ ")))
        child_prefix = "" if is_root else prefix + ("   " if is_last else "│  ")
        for i, child in enumerate(node.children):
            visit(child, child_prefix, i == len(node.children) - 1, False)

    for root in roots:
        visit(root, "", True, True)
    return out


def key_attributes(span: StoredSpan) -> list[str]:
    """The ``label=value`` pairs shown for a span."""
    attrs = span.attributes
    shown: list[str] = []
    used: set[str] = set()
    for key, label in _KEY_ATTRIBUTES:
        if key in attrs and label not in {s.split("=", 1)[0] for s in shown}:
            shown.append(f"{label}={_short(attrs[key])}")
            used.add(key)
    for key in sorted(attrs):
        if key.startswith("modgate.") and key not in used and key not in _SKIPPED_MODGATE:
            shown.append(f"{key.removeprefix('modgate.')}={_short(attrs[key])}")
    if "modgate.variant" not in attrs and span.resource.get("modgate.variant") not in (None, "stable"):
        shown.append(f"variant={span.resource['modgate.variant']}")
    if span.status_code == "ERROR":
        shown.append(f"ERROR: {span.status_message}" if span.status_message else "ERROR")
    return shown


def render_waterfall(trace_id: str, spans: list[StoredSpan]) -> str:
    if not spans:
        return f"trace {trace_id}: no spans"
    roots = build_tree(spans)
    t0 = min(s.start_ns for s in spans)
    t1 = max(s.end_ns for s in spans)
    total_ns = max(t1 - t0, 1)
    services = sorted({s.service_name for s in spans})
    errors = sum(1 for s in spans if s.status_code == "ERROR")
    orphans = sum(1 for r in roots if r.orphan)
    header = (
        f"trace {trace_id}  {len(spans)} spans  {len(services)} services ({', '.join(services)})  "
        f"{total_ns / 1e6:.1f} ms"
    )
    if errors:
        header += f"  {errors} error span(s)"
    if orphans:
        header += f"  {orphans} orphan(s)"
    rows = walk(roots)
    service_width = max(len("service"), *(len(s) for s in services))
    lines = [
        header,
        f"{'start ms':>9} {'dur ms':>9}  {'':{BAR_WIDTH}}  {'service':<{service_width}}  span",
    ]
    for node, prefix in rows:
        s = node.span
        offset_ms = (s.start_ns - t0) / 1e6
        label = prefix + s.name
        if len(label) > NAME_WIDTH:
            label = label[: NAME_WIDTH - 1] + "…"
        extras = key_attributes(s)
        if node.orphan:
            extras.insert(0, f"(orphan: parent {s.parent_span_id} missing)")
        marker = "!" if s.status_code == "ERROR" else " "
        lines.append(
            f"{offset_ms:9.1f} {s.duration_ms:9.1f} {marker}{_bar(s, t0, total_ns)}  "
            f"{s.service_name:<{service_width}}  {label:<{NAME_WIDTH}}  {' '.join(extras)}".rstrip()
        )
    return "\n".join(lines)


def to_json(trace_id: str, spans: list[StoredSpan]) -> dict[str, Any]:
    t0 = min((s.start_ns for s in spans), default=0)
    out = []
    for node, _prefix in walk(build_tree(spans)):
        item = node.span.to_dict()
        item.update(depth=node.depth, orphan=node.orphan, offset_ms=(node.span.start_ns - t0) / 1e6)
        out.append(item)
    return {"trace_id": trace_id, "spans": out}


def _bar(span: StoredSpan, t0: int, total_ns: int) -> str:
    start = int((span.start_ns - t0) / total_ns * BAR_WIDTH)
    start = min(start, BAR_WIDTH - 1)
    length = max(1, round((span.end_ns - span.start_ns) / total_ns * BAR_WIDTH))
    length = min(length, BAR_WIDTH - start)
    return "·" * start + "█" * length + "·" * (BAR_WIDTH - start - length)


def _short(value: Any, limit: int = 40) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
