"""SQLite storage of OTLP spans: write an ExportTraceServiceRequest, read a trace back.

One row per span. WAL mode lets `modgate trace` read while the receiver writes; a single
lock serialises writers inside the receiver process.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spans (
    trace_id        TEXT NOT NULL,
    span_id         TEXT NOT NULL,
    parent_span_id  TEXT NOT NULL,
    name            TEXT NOT NULL,
    kind            TEXT NOT NULL,
    service_name    TEXT NOT NULL,
    start_ns        INTEGER NOT NULL,
    end_ns          INTEGER NOT NULL,
    status_code     TEXT NOT NULL,
    status_message  TEXT NOT NULL,
    attributes      TEXT NOT NULL,
    resource        TEXT NOT NULL,
    events          TEXT NOT NULL,
    links           TEXT NOT NULL,
    received_ns     INTEGER NOT NULL,
    PRIMARY KEY (trace_id, span_id)
);
CREATE INDEX IF NOT EXISTS spans_root_start ON spans (parent_span_id, start_ns);
CREATE INDEX IF NOT EXISTS spans_received ON spans (received_ns);
"""

_KINDS = {0: "UNSPECIFIED", 1: "INTERNAL", 2: "SERVER", 3: "CLIENT", 4: "PRODUCER", 5: "CONSUMER"}
_STATUS = {0: "UNSET", 1: "OK", 2: "ERROR"}


@dataclass(frozen=True)
class StoredSpan:
    trace_id: str  # 32 hex
    span_id: str  # 16 hex
    parent_span_id: str  # 16 hex, "" for a root span
    name: str
    kind: str  # SERVER, CLIENT, INTERNAL, ...
    service_name: str
    start_ns: int
    end_ns: int
    status_code: str  # UNSET | OK | ERROR
    status_message: str = ""
    attributes: dict[str, Any] = field(default_factory=dict)
    resource: dict[str, Any] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    links: list[dict[str, Any]] = field(default_factory=list)

    @property
    def duration_ms(self) -> float:
        return (self.end_ns - self.start_ns) / 1e6

    def to_dict(self) -> dict[str, Any]:
        return {
            "trace_id": self.trace_id,
            "span_id": self.span_id,
            "parent_span_id": self.parent_span_id,
            "name": self.name,
            "kind": self.kind,
            "service_name": self.service_name,
            "start_ns": self.start_ns,
            "end_ns": self.end_ns,
            "duration_ms": self.duration_ms,
            "status_code": self.status_code,
            "status_message": self.status_message,
            "attributes": self.attributes,
            "resource": self.resource,
            "events": self.events,
            "links": self.links,
        }


class TraceStore:
    """A span database at ``path`` (created with its parent folder when missing)."""

    def __init__(self, path: str | Path, *, max_spans: int = 200_000) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.max_spans = max_spans
        self._lock = threading.Lock()
        self._inserted_since_prune = 0
        # One connection shared across the receiver's handler threads, guarded by _lock.
        self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=10.0)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._db.commit()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> TraceStore:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # --- writing ----------------------------------------------------------------------

    def add_request(self, request: ExportTraceServiceRequest) -> int:
        """Store every span of an OTLP export request; returns how many were stored."""
        rows = list(_rows(request, time.time_ns()))
        if not rows:
            return 0
        with self._lock:
            # A re-sent batch (exporter retry) replaces rather than duplicates.
            self._db.executemany("INSERT OR REPLACE INTO spans VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
            self._db.commit()
            self._inserted_since_prune += len(rows)
            if self._inserted_since_prune >= 1000:
                self._prune()
        return len(rows)

    def _prune(self) -> None:
        self._inserted_since_prune = 0
        (count,) = self._db.execute("SELECT COUNT(*) FROM spans").fetchone()
        excess = count - self.max_spans
        if excess > 0:
            self._db.execute(
                "DELETE FROM spans WHERE rowid IN (SELECT rowid FROM spans ORDER BY received_ns LIMIT ?)",
                (excess,),
            )
            self._db.commit()

    # --- reading ----------------------------------------------------------------------

    def spans_for_trace(self, trace_id: str) -> list[StoredSpan]:
        """All stored spans of ``trace_id`` (32 hex, any case), ordered by start time."""
        with self._lock:
            cursor = self._db.execute(
                "SELECT * FROM spans WHERE trace_id = ? ORDER BY start_ns, end_ns DESC",
                (trace_id.strip().lower(),),
            )
            rows = cursor.fetchall()
        return [_span_from_row(row) for row in rows]

    def last_trace_id(self) -> str | None:
        """The trace whose root span started last (any span if no root arrived yet), or None."""
        with self._lock:
            row = self._db.execute(
                "SELECT trace_id FROM spans WHERE parent_span_id = '' ORDER BY start_ns DESC LIMIT 1"
            ).fetchone()
            if row is None:
                row = self._db.execute("SELECT trace_id FROM spans ORDER BY start_ns DESC LIMIT 1").fetchone()
        return row[0] if row else None

    def resolve_trace_id(self, prefix: str) -> list[str]:
        """Stored trace ids starting with ``prefix`` (hex, any case); at most two, to detect ambiguity."""
        prefix = prefix.strip().lower()
        if not prefix or any(c not in "0123456789abcdef" for c in prefix):
            return []
        with self._lock:
            rows = self._db.execute(
                "SELECT DISTINCT trace_id FROM spans WHERE trace_id >= ? AND trace_id < ? LIMIT 2",
                (prefix, prefix + "g"),
            ).fetchall()
        return [row[0] for row in rows]

    def trace_ids(self, limit: int = 20) -> list[str]:
        """Most recent traces first (by their latest span start)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT trace_id FROM spans GROUP BY trace_id ORDER BY MAX(start_ns) DESC LIMIT ?",
                (limit,),
            ).fetchall()
        return [row[0] for row in rows]

    def span_count(self) -> int:
        with self._lock:
            (count,) = self._db.execute("SELECT COUNT(*) FROM spans").fetchone()
        return int(count)


# --- OTLP protobuf -> rows ------------------------------------------------------------------


def _rows(request: ExportTraceServiceRequest, received_ns: int) -> Iterator[tuple[Any, ...]]:
    for resource_spans in request.resource_spans:
        resource = _attributes(resource_spans.resource.attributes)
        service_name = str(resource.get("service.name", "unknown_service"))
        resource_json = json.dumps(resource, sort_keys=True)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                if len(span.trace_id) != 16 or len(span.span_id) != 8:
                    raise ValueError(
                        f"span {span.name!r} has a malformed id (trace_id {len(span.trace_id)} bytes, "
                        f"span_id {len(span.span_id)} bytes; OTLP needs 16 and 8)"
                    )
                events = [
                    {"name": e.name, "time_ns": e.time_unix_nano, "attributes": _attributes(e.attributes)}
                    for e in span.events
                ]
                links = [
                    {
                        "trace_id": link.trace_id.hex(),
                        "span_id": link.span_id.hex(),
                        "attributes": _attributes(link.attributes),
                    }
                    for link in span.links
                ]
                yield (
                    span.trace_id.hex(),
                    span.span_id.hex(),
                    span.parent_span_id.hex(),
                    span.name,
                    _KINDS.get(span.kind, str(span.kind)),
                    service_name,
                    span.start_time_unix_nano,
                    max(span.end_time_unix_nano, span.start_time_unix_nano),
                    _STATUS.get(span.status.code, str(span.status.code)),
                    span.status.message,
                    json.dumps(_attributes(span.attributes), sort_keys=True),
                    resource_json,
                    json.dumps(events),
                    json.dumps(links),
                    received_ns,
                )


def _attributes(pairs: Iterable[KeyValue]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        out[pair.key] = _value(pair.value)
    return out


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return _attributes(value.kvlist_value.values)
    if kind == "bytes_value":
        return value.bytes_value.hex()
    return getattr(value, kind)


def _span_from_row(row: tuple[Any, ...]) -> StoredSpan:
    return StoredSpan(
        trace_id=row[0],
        span_id=row[1],
        parent_span_id=row[2],
        name=row[3],
        kind=row[4],
        service_name=row[5],
        start_ns=row[6],
        end_ns=row[7],
        status_code=row[8],
        status_message=row[9],
        attributes=json.loads(row[10]),
        resource=json.loads(row[11]),
        events=json.loads(row[12]),
        links=json.loads(row[13]),
    )
