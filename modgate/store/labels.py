"""Review labels in the verdict store: written by a reviewer's decision, read as ground truth
(`modgate eval --from-reviews`). The latest label of a verdict wins (a reviewer may correct
another's)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import sqlalchemy as sa

from modgate.store.schema import labels, verdicts
from modgate.store.store import VerdictStore

LABEL_DECISIONS = ("ALLOW", "BLOCK")


@dataclass(frozen=True)
class ReviewLabel:
    verdict_id: str
    reviewer: str
    decision: str  # ALLOW | BLOCK
    category: str = ""  # the policy category of a BLOCK
    note: str = ""
    labelled_at: float = field(default_factory=time.time)
    label_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def __post_init__(self) -> None:
        if self.decision not in LABEL_DECISIONS:
            raise ValueError(f"a label's decision is ALLOW or BLOCK, not {self.decision!r}")
        if self.decision == "BLOCK" and not self.category:
            raise ValueError("a BLOCK label names the category it blocks for")


@dataclass(frozen=True)
class LabelledVerdict:
    label: ReviewLabel
    verdict: bytes  # the modgate.v1.Verdict the reviewer saw
    content_id: str


def add_label(store: VerdictStore, label: ReviewLabel) -> None:
    with store.connect() as connection:
        connection.execute(labels.insert().values(**label.__dict__))
        connection.commit()


def labelled_verdicts(store: VerdictStore, *, since: float | None = None) -> Iterator[LabelledVerdict]:
    """Each labelled verdict still in the store once, with its latest label, oldest first."""
    latest = (
        sa.select(labels.c.verdict_id, sa.func.max(labels.c.labelled_at).label("at"))
        .group_by(labels.c.verdict_id)
        .subquery()
    )
    query = (
        sa.select(labels, verdicts.c.verdict, verdicts.c.content_id)
        .join(
            latest, sa.and_(labels.c.verdict_id == latest.c.verdict_id, labels.c.labelled_at == latest.c.at)
        )
        .join(verdicts, verdicts.c.verdict_id == labels.c.verdict_id)
        .order_by(labels.c.labelled_at)
    )
    if since is not None:
        query = query.where(labels.c.labelled_at >= since)
    with store.connect() as connection:
        rows = connection.execute(query).all()
    seen: set[str] = set()
    for row in rows:
        m = row._mapping
        if m["verdict_id"] in seen:  # two labels at the same instant: the first is kept
            continue
        seen.add(m["verdict_id"])
        label = ReviewLabel(**{name: m[name] for name in ReviewLabel.__dataclass_fields__})
        yield LabelledVerdict(label=label, verdict=m["verdict"], content_id=m["content_id"])
