"""The audit trail: every console action and refusal, who, when, on which verdict.

`detail` holds ids, categories and outcomes only (never text, notes or media): the trail is
read by admins who need not see the content to see what was done.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from modgate.store.schema import audit
from modgate.store.store import VerdictStore


@dataclass(frozen=True)
class AuditEntry:
    actor: str
    role: str
    action: str  # login, login_refused, logout, claim, claim_refused, view, reveal, decide, ...
    verdict_id: str = ""
    detail: dict[str, Any] = field(default_factory=dict)
    at: float = field(default_factory=time.time)
    audit_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def row(self) -> dict[str, Any]:
        return dict(self.__dict__)


def record(store: VerdictStore, entry: AuditEntry) -> None:
    with store.connect() as connection:
        connection.execute(audit.insert().values(**entry.row()))
        connection.commit()


def recent(store: VerdictStore, *, verdict_id: str = "", limit: int = 200) -> list[AuditEntry]:
    """Newest first."""
    query = sa.select(audit).order_by(audit.c.at.desc()).limit(limit)
    if verdict_id:
        query = query.where(audit.c.verdict_id == verdict_id)
    with store.connect() as connection:
        rows = connection.execute(query).all()
    return [AuditEntry(**{name: r._mapping[name] for name in AuditEntry.__dataclass_fields__}) for r in rows]
