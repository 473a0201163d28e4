"""Labels export (admins): every label, oldest first, as JSONL or CSV, with what the verdict
was decided under (policy, the gateway's decision and risk) when it is still stored."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa

from modgate.store.schema import labels, verdicts
from modgate.store.store import VerdictStore

FIELDS = (
    "label_id",
    "verdict_id",
    "reviewer",
    "labelled_at",
    "decision",
    "category",
    "note",
    "content_id",
    "policy_name",
    "policy_version",
    "verdict_decision",
    "risk",
)
_BATCH = 1000


def label_rows(store: VerdictStore, *, since: float | None = None) -> Iterator[dict[str, Any]]:
    query = (
        sa.select(
            labels,
            verdicts.c.content_id,
            verdicts.c.policy_name,
            verdicts.c.policy_version,
            verdicts.c.decision.label("verdict_decision"),
            verdicts.c.risk,
        )
        .select_from(labels.outerjoin(verdicts, verdicts.c.verdict_id == labels.c.verdict_id))
        .order_by(labels.c.labelled_at, labels.c.label_id)
    )
    if since is not None:
        query = query.where(labels.c.labelled_at >= since)
    offset = 0
    while True:
        with store.connect() as connection:
            rows = connection.execute(query.limit(_BATCH).offset(offset)).all()
        for row in rows:
            m = row._mapping
            yield {name: m[name] if m[name] is not None else "" for name in FIELDS}
        if len(rows) < _BATCH:
            return
        offset += _BATCH


def jsonl(rows: Iterator[dict[str, Any]]) -> Iterator[str]:
    for row in rows:
        yield json.dumps(row, separators=(",", ":")) + "\n"


def csv_lines(rows: Iterator[dict[str, Any]]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        # A spreadsheet runs a cell starting with = + - @ as a formula: notes are reviewers' text.
        writer.writerow({k: f"'{v}" if isinstance(v, str) and v[:1] in "=+-@" else v for k, v in row.items()})
        if buffer.tell() > 64 * 1024:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()
