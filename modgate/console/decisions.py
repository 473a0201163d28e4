"""A reviewer's decision: ALLOW, or BLOCK naming a category, with a note.

One transaction: the reviewer's running lease is deleted (only its holder may decide, and only
once: the delete is the check), the label is written (modgate/store/labels.py's row, which
`modgate eval --from-reviews` reads) and the audit entry. The labelled verdict leaves the queue.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import sqlalchemy as sa

from modgate.console.audit import AuditEntry
from modgate.store.labels import LABEL_DECISIONS, ReviewLabel
from modgate.store.schema import audit, labels, review_leases
from modgate.store.store import VerdictStore

MAX_NOTE_CHARS = 2000


class DecisionRefused(ValueError):
    """The decision was not recorded; the message says why and what to do."""


@dataclass(frozen=True)
class DecisionForm:
    decision: str
    category: str = ""
    note: str = ""

    def validated(self, categories: set[str]) -> DecisionForm:
        decision = self.decision.strip().upper()
        if decision not in LABEL_DECISIONS:
            raise DecisionRefused(f"decide ALLOW or BLOCK, not {self.decision[:16]!r}")
        category = self.category.strip() if decision == "BLOCK" else ""
        if decision == "BLOCK" and category not in categories:
            raise DecisionRefused("a BLOCK names one of the policy's categories: choose one")
        if len(self.note) > MAX_NOTE_CHARS:
            raise DecisionRefused(f"the note is longer than {MAX_NOTE_CHARS} characters: shorten it")
        return DecisionForm(decision, category, self.note.strip())


def decide(
    store: VerdictStore,
    verdict_id: str,
    *,
    reviewer: str,
    role: str,
    form: DecisionForm,
    now: float | None = None,
) -> ReviewLabel:
    """Record a validated decision; DecisionRefused unless `reviewer` holds a running lease."""
    now = time.time() if now is None else now
    label = ReviewLabel(
        verdict_id=verdict_id,
        reviewer=reviewer,
        decision=form.decision,
        category=form.category,
        note=form.note,
        labelled_at=now,
    )
    entry = AuditEntry(
        actor=reviewer,
        role=role,
        action="decide",
        verdict_id=verdict_id,
        detail={"decision": form.decision, "category": form.category, "label_id": label.label_id},
        at=now,
    )
    with store.connect() as connection:
        held = connection.execute(
            review_leases.delete().where(
                review_leases.c.verdict_id == verdict_id,
                review_leases.c.reviewer == reviewer,
                review_leases.c.expires_at > now,
            )
        ).rowcount
        done = connection.execute(
            sa.select(labels.c.label_id).where(labels.c.verdict_id == verdict_id)
        ).first()
        if held != 1 or done is not None:
            connection.rollback()
            raise DecisionRefused(
                "this item was decided already"
                if done is not None
                else "you do not hold this item's lease (expired, or another reviewer's): claim it again"
            )
        connection.execute(labels.insert().values(**label.__dict__))
        connection.execute(audit.insert().values(**entry.row()))
        connection.commit()
    return label
