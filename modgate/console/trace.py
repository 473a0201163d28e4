"""The trace waterfall page's rows, from the local trace store (`modgate up` runs it).

The tree, order and the attributes shown are `modgate trace`'s (modgate/tools/trace_cmd.py);
this module only turns them into positions on a time axis. The console reads the store's
SQLite file; without one (a cluster sends traces to its own collector) the page says so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from modgate.tools.trace_cmd import build_tree, key_attributes, walk
from modgate.tools.tracestore import TraceStore

UNITS = 1000.0
_TRACE_ID = re.compile(r"^[0-9a-f]{32}$")


@dataclass(frozen=True)
class SpanRow:
    name: str
    service: str
    depth: int
    offset_ms: float
    duration_ms: float
    x: float  # 0..UNITS on the trace's time axis
    width: float
    error: bool
    attributes: tuple[str, ...]


@dataclass(frozen=True)
class Waterfall:
    trace_id: str
    total_ms: float
    rows: tuple[SpanRow, ...]
    problem: str = ""  # why there is nothing to show


def waterfall(db: Path, trace_id: str) -> Waterfall:
    trace_id = trace_id.strip().lower()
    if not _TRACE_ID.match(trace_id):
        return Waterfall(trace_id[:32], 0.0, (), "not a trace id (32 hex digits)")
    if not db.exists():
        return Waterfall(
            trace_id,
            0.0,
            (),
            "no local trace store here (`modgate up` runs one; in a cluster, see its collector)",
        )
    with TraceStore(db) as store:
        spans = store.spans_for_trace(trace_id)
    if not spans:
        return Waterfall(trace_id, 0.0, (), "the trace store has no spans of this trace (yet)")
    t0 = min(s.start_ns for s in spans)
    total_ns = max(max(s.end_ns for s in spans) - t0, 1)
    rows = []
    for node, _prefix in walk(build_tree(spans)):
        s = node.span
        x = (s.start_ns - t0) / total_ns * UNITS
        width = max(2.0, (s.end_ns - s.start_ns) / total_ns * UNITS)
        rows.append(
            SpanRow(
                name=s.name,
                service=s.service_name,
                depth=node.depth,
                offset_ms=round((s.start_ns - t0) / 1e6, 1),
                duration_ms=round(s.duration_ms, 1),
                x=round(min(x, UNITS - width), 2),
                width=round(width, 2),
                error=s.status_code == "ERROR",
                attributes=tuple(key_attributes(s)),
            )
        )
    return Waterfall(trace_id, round(total_ns / 1e6, 1), tuple(rows))
