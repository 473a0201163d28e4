"""The REVIEW queue and its leases.

The queue is every stored REVIEW verdict without a label, riskiest first, then oldest. The
policy and age filters run in SQL; category and variant read the Verdict and the `models`
column in Python (JSON queries differ between SQLite and PostgreSQL), in batches until a page
is full.

A lease is one `review_leases` row per verdict: inserting it is the claim, so of two reviewers
racing for an item exactly one insert succeeds. An expired lease is taken over by deleting it
where it is still expired, then inserting, in one transaction.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from modgate.store.schema import labels, review_leases, verdicts
from modgate.store.store import VerdictStore
from modgate.v1 import moderation_pb2 as pb

_BATCH = 200
_FLAGGED = (pb.DECISION_REVIEW, pb.DECISION_BLOCK)


@dataclass(frozen=True)
class QueueFilter:
    category: str = ""
    policy: str = ""
    variant: str = ""  # stable | canary: any modality served by that variant
    min_age_h: float | None = None  # decided at least this long ago
    max_age_h: float | None = None  # decided at most this long ago

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> QueueFilter:
        def hours(name: str) -> float | None:
            value = values.get(name)
            if value in (None, ""):
                return None
            number = float(value)
            if number < 0:
                raise ValueError(f"{name} must be zero or more hours")
            return number

        return cls(
            category=str(values.get("category") or "").strip()[:64],
            policy=str(values.get("policy") or "").strip()[:64],
            variant=str(values.get("variant") or "").strip()[:32],
            min_age_h=hours("min_age_h"),
            max_age_h=hours("max_age_h"),
        )

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v not in (None, "")}


@dataclass(frozen=True)
class Lease:
    verdict_id: str
    reviewer: str
    claimed_at: float
    expires_at: float

    def active(self, now: float | None = None) -> bool:
        return self.expires_at > (time.time() if now is None else now)


@dataclass(frozen=True)
class QueueEntry:
    verdict_id: str
    decided_at: float
    risk: float
    policy: str
    categories: tuple[tuple[str, float], ...]  # flagged categories, highest first
    variants: tuple[str, ...]
    lease: Lease | None


def queue_page(
    store: VerdictStore, flt: QueueFilter, *, limit: int, skip: int = 0, now: float | None = None
) -> list[QueueEntry]:
    """Entries skip .. skip+limit of the filtered queue (limit + 1 are read: the caller tells
    from the extra one whether a next page exists, and shows `limit`)."""
    now = time.time() if now is None else now
    out: list[QueueEntry] = []
    matched = 0
    for row in _candidates(store, flt, now):
        entry = _entry(row, flt)
        if entry is None:
            continue
        matched += 1
        if matched > skip:
            out.append(entry)
            if len(out) > limit:
                break
    leases = leases_of(store, [e.verdict_id for e in out])
    return [QueueEntry(**{**e.__dict__, "lease": leases.get(e.verdict_id)}) for e in out]


def in_queue(store: VerdictStore, verdict_id: str) -> bool:
    query = _queue_query(QueueFilter(), time.time()).where(verdicts.c.verdict_id == verdict_id)
    with store.connect() as connection:
        return connection.execute(query).first() is not None


def _queue_query(flt: QueueFilter, now: float) -> Any:
    labelled = sa.select(labels.c.verdict_id).where(labels.c.verdict_id == verdicts.c.verdict_id)
    query = sa.select(
        verdicts.c.verdict_id,
        verdicts.c.decided_at,
        verdicts.c.risk,
        verdicts.c.policy_name,
        verdicts.c.models,
        verdicts.c.verdict,
    ).where(verdicts.c.decision == "REVIEW", ~sa.exists(labelled))
    if flt.policy:
        query = query.where(verdicts.c.policy_name == flt.policy)
    if flt.min_age_h is not None:
        query = query.where(verdicts.c.decided_at <= now - flt.min_age_h * 3600)
    if flt.max_age_h is not None:
        query = query.where(verdicts.c.decided_at >= now - flt.max_age_h * 3600)
    return query.order_by(verdicts.c.risk.desc(), verdicts.c.decided_at, verdicts.c.verdict_id)


def _candidates(store: VerdictStore, flt: QueueFilter, now: float) -> Iterator[Any]:
    query = _queue_query(flt, now)
    offset = 0
    while True:
        with store.connect() as connection:
            rows = connection.execute(query.limit(_BATCH).offset(offset)).all()
        yield from rows
        if len(rows) < _BATCH:
            return
        offset += _BATCH


def _entry(row: Any, flt: QueueFilter) -> QueueEntry | None:
    m = row._mapping
    variants = tuple(sorted({str(v.get("variant", "")) for v in (m["models"] or {}).values()} - {""}))
    if flt.variant and flt.variant not in variants:
        return None
    verdict = pb.Verdict.FromString(bytes(m["verdict"]))
    flagged = sorted(
        ((c.category, c.score) for c in verdict.categories if c.decision in _FLAGGED), key=lambda c: -c[1]
    )
    if flt.category and flt.category not in {name for name, _ in flagged}:
        return None
    return QueueEntry(
        verdict_id=m["verdict_id"],
        decided_at=m["decided_at"],
        risk=m["risk"],
        policy=m["policy_name"],
        categories=tuple(flagged),
        variants=variants,
        lease=None,
    )


# --- leases -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClaimResult:
    ok: bool
    lease: Lease | None  # the lease now in force: ours, or the other reviewer's


def claim(
    store: VerdictStore, verdict_id: str, reviewer: str, *, lease_s: float, now: float | None = None
) -> ClaimResult:
    """Claim `verdict_id` for `reviewer` (renewing their own lease). Refused while another
    reviewer's lease runs."""
    now = time.time() if now is None else now
    mine = Lease(verdict_id, reviewer, now, now + lease_s)
    with store.connect() as connection:
        # An expired lease, or our own, gives way; a running one of someone else stays.
        connection.execute(
            review_leases.delete().where(
                review_leases.c.verdict_id == verdict_id,
                sa.or_(review_leases.c.expires_at <= now, review_leases.c.reviewer == reviewer),
            )
        )
        try:
            connection.execute(review_leases.insert().values(**mine.__dict__))
            connection.commit()
            return ClaimResult(True, mine)
        except sa.exc.IntegrityError:
            connection.rollback()
    return ClaimResult(False, lease_of(store, verdict_id))


def release(store: VerdictStore, verdict_id: str, reviewer: str | None) -> bool:
    """End a lease: `reviewer`'s own, or any (reviewer None: an admin). Whether one ended."""
    query = review_leases.delete().where(review_leases.c.verdict_id == verdict_id)
    if reviewer is not None:
        query = query.where(review_leases.c.reviewer == reviewer)
    with store.connect() as connection:
        ended = connection.execute(query).rowcount
        connection.commit()
    return bool(ended)


def lease_of(store: VerdictStore, verdict_id: str) -> Lease | None:
    return leases_of(store, [verdict_id]).get(verdict_id)


def leases_of(store: VerdictStore, verdict_ids: list[str]) -> dict[str, Lease]:
    if not verdict_ids:
        return {}
    query = sa.select(review_leases).where(review_leases.c.verdict_id.in_(verdict_ids))
    with store.connect() as connection:
        rows = connection.execute(query).all()
    return {r.verdict_id: Lease(r.verdict_id, r.reviewer, r.claimed_at, r.expires_at) for r in rows}
