"""VerdictStore: the one interface to the verdict store (synchronous; the gateway calls it
from a thread of its own, the CLI directly).

    store = VerdictStore.open(StoreSettings())       # engine + migrations to head
    store.claim(caller, request_id, owner, digest, lease_s)  -> Claimed | Decided | Held
    store.commit(record, owner)                      # verdict + its policy, claim released, one tx
    store.find(caller, request_id) / store.get(verdict_id)
    store.summaries(decision=..., since=..., content_id=..., limit=...)
    store.scan(since=..., limit=..., batch=...)      # records in decision order
    store.scan_for_replay(since=..., limit=...)      # the same, what replay reads of each
    store.scan_served(since=..., until=...)          # the same, what the canary report reads
    store.prune(older_than=...)

Every database failure surfaces as StoreUnavailable (the gateway then spools or refuses, as
the policy says); a broken invariant is a bug and raises as is.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from modgate.store.config import StoreSettings
from modgate.store.engine import create_engine, migrate
from modgate.store.records import ReplayRow, ServedRow, Thumbnail, VerdictRecord, VerdictSummary
from modgate.store.schema import claims, policies, review_leases, thumbnails, verdicts


class StoreUnavailable(RuntimeError):
    """The database did not answer (down, unreachable, locked past its timeout)."""


@dataclass(frozen=True)
class Claimed:
    """This owner decides the request; commit() or release() ends the claim."""


@dataclass(frozen=True)
class Decided:
    record: VerdictRecord


@dataclass(frozen=True)
class Held:
    """Another owner is deciding it (until expires_at, Unix seconds)."""

    owner: str
    request_digest: str
    expires_at: float


ClaimOutcome = Claimed | Decided | Held


# The hot statements, built once (building and cache-keying one per call cost more than running
# it on SQLite).
_FIND = sa.select(verdicts).where(
    (verdicts.c.caller == sa.bindparam("caller")) & (verdicts.c.request_id == sa.bindparam("request_id"))
)
_RELEASE = claims.delete().where(
    (claims.c.caller == sa.bindparam("caller"))
    & (claims.c.request_id == sa.bindparam("request_id"))
    & (claims.c.owner == sa.bindparam("owner"))
)


def _insert_ignoring_conflicts(engine: sa.Engine, table: sa.Table) -> Any:
    dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
    return dialect.insert(table).on_conflict_do_nothing()


class VerdictStore:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self._known_policies: set[str] = set()
        # Built once and executed with parameters: .values(row) per call rebuilt and re-keyed
        # the statement each time (a third of an insert's CPU).
        self._insert_verdict = _insert_ignoring_conflicts(engine, verdicts).returning(verdicts.c.verdict_id)
        self._insert_policy = _insert_ignoring_conflicts(engine, policies)
        self._insert_claim = _insert_ignoring_conflicts(engine, claims).returning(claims.c.owner)

    @classmethod
    def open(cls, settings: StoreSettings) -> VerdictStore:
        engine = create_engine(settings)
        try:
            migrate(engine)
        except sa.exc.DBAPIError as exc:
            engine.dispose()
            raise StoreUnavailable(f"cannot open the verdict store: {_cause(exc)}") from exc
        return cls(engine)

    def close(self) -> None:
        self.engine.dispose()

    @property
    def backend(self) -> str:
        return self.engine.dialect.name

    @property
    def shared(self) -> bool:
        """Whether several gateway processes may share this store (PostgreSQL): then claims
        coordinate their duplicates. A SQLite store belongs to one gateway process (the chart
        refuses more; `modgate up` runs one), whose ledger coalesces duplicates in memory, so a
        claim there is only a lookup: no write before the computation."""
        return self.backend != "sqlite"

    def ping(self) -> None:
        with self._connect() as connection:
            connection.execute(sa.text("SELECT 1"))

    # --- idempotency ---------------------------------------------------------------------------

    def find(self, caller: str, request_id: str) -> VerdictRecord | None:
        with self._connect() as connection:
            return self._find(connection, caller, request_id)

    def claim(
        self, caller: str, request_id: str, owner: str, request_digest: str, lease_s: float
    ) -> ClaimOutcome:
        """Decided if a verdict exists, else Claimed (inserted, or an expired claim taken over),
        else Held by whoever claimed it first. Two statements and a commit in the common cases
        (a new request; a duplicate of a decided one); a lookup alone on an unshared store."""
        if not self.shared:
            found = self.find(caller, request_id)
            return Claimed() if found is None else Decided(found)
        now = time.time()
        key = (claims.c.caller == caller) & (claims.c.request_id == request_id)
        with self._connect() as connection:
            if self.engine.dialect.name == "postgresql":
                # A claim lost in a crash only means a duplicate computes again: not worth an
                # fsync per request (the verdict's commit keeps it).
                connection.execute(sa.text("SET LOCAL synchronous_commit = off"))
            values = {
                "caller": caller,
                "request_id": request_id,
                "owner": owner,
                "request_digest": request_digest,
                "claimed_at": now,
                "expires_at": now + lease_s,
            }
            if connection.execute(self._insert_claim, values).first() is None:
                taken = connection.execute(
                    claims.update().where(key & (claims.c.expires_at < now)).values(**values)
                ).rowcount
                if not taken:
                    found = self._find(connection, caller, request_id)
                    row = None if found else connection.execute(sa.select(claims).where(key)).first()
                    connection.rollback()
                    if found is not None:
                        return Decided(found)
                    if row is None:  # released between our insert and this read: try again
                        return self.claim(caller, request_id, owner, request_digest, lease_s)
                    return Held(row.owner, row.request_digest, row.expires_at)
            # Decided already (its claim was released with its commit), or committed while our
            # insert waited on its claim row (PostgreSQL blocks a conflicting insert until the
            # other transaction ends; this read, a new statement, sees it).
            found = self._find(connection, caller, request_id)
            if found is not None:
                connection.rollback()
                return Decided(found)
            connection.commit()
            return Claimed()

    def release(self, caller: str, request_id: str, owner: str) -> None:
        with self._connect() as connection:
            connection.execute(_RELEASE, {"caller": caller, "request_id": request_id, "owner": owner})
            connection.commit()

    # --- writing -------------------------------------------------------------------------------

    def commit(self, record: VerdictRecord, owner: str | None = None) -> bool:
        """Store the verdict (and its policy the first time), ending `owner`'s claim, in one
        transaction. False when it was already stored (a spooled copy drained twice, or a
        duplicate that took over an expired claim): the first one stays."""
        return self.commit_batch([(record, owner)])[0]

    def commit_batch(self, items: list[tuple[VerdictRecord, str | None]]) -> list[bool]:
        """commit() of several (record, owner) in one transaction: one fsync for all of them
        (the gateway's group commit under load). Per item: whether it was new."""
        with self._connect() as connection:
            stored = []
            for record, owner in items:
                stored.append(self._insert(connection, record))
                if owner is not None:
                    connection.execute(
                        _RELEASE, {"caller": record.caller, "request_id": record.request_id, "owner": owner}
                    )
            connection.commit()
        self._known_policies.update(record.policy.digest for record, _ in items)
        return stored

    def commit_many(self, records: list[VerdictRecord]) -> int:
        """Store a batch (the spool drain, bulk loads); returns how many were new."""
        with self._connect() as connection:
            stored = sum(self._insert(connection, record) for record in records)
            connection.commit()
        self._known_policies.update(r.policy.digest for r in records)
        return stored

    def _insert(self, connection: sa.Connection, record: VerdictRecord) -> bool:
        policy = record.policy
        if policy.digest not in self._known_policies:
            connection.execute(
                self._insert_policy,
                {
                    "digest": policy.digest,
                    "name": policy.name,
                    "version": policy.version,
                    "document": policy.document,
                    "first_seen": record.decided_at,
                },
            )
        new = connection.execute(self._insert_verdict, record.row()).first() is not None
        if new and record.thumbnails:
            connection.execute(
                thumbnails.insert(),
                [{"verdict_id": record.verdict_id, **asdict(t)} for t in record.thumbnails],
            )
        return new

    def prune(self, *, older_than: float) -> int:
        """Delete verdicts decided before `older_than` (Unix seconds) and stale claims."""
        with self._connect() as connection:
            old = sa.select(verdicts.c.verdict_id).where(verdicts.c.decided_at < older_than)
            connection.execute(thumbnails.delete().where(thumbnails.c.verdict_id.in_(old)))
            connection.execute(review_leases.delete().where(review_leases.c.expires_at < time.time()))
            deleted = connection.execute(verdicts.delete().where(verdicts.c.decided_at < older_than)).rowcount
            connection.execute(claims.delete().where(claims.c.expires_at < time.time() - 3600))
            connection.commit()
        return deleted

    # --- reading -------------------------------------------------------------------------------

    def get(self, verdict_id: str) -> VerdictRecord | None:
        with self._connect() as connection:
            row = connection.execute(sa.select(verdicts).where(verdicts.c.verdict_id == verdict_id)).first()
            if row is None:
                return None
            return VerdictRecord.from_row(row, self._document(connection, row.policy_digest))

    def thumbnails(self, verdict_id: str) -> list[Thumbnail]:
        """The evidence-frame thumbnails stored with a verdict, in frame order."""
        query = (
            sa.select(thumbnails)
            .where(thumbnails.c.verdict_id == verdict_id)
            .order_by(thumbnails.c.frame_index)
        )
        with self._connect() as connection:
            rows = connection.execute(query).all()
        return [
            Thumbnail(**{name: row._mapping[name] for name in Thumbnail.__dataclass_fields__}) for row in rows
        ]

    def policy_document(self, digest: str) -> dict[str, Any] | None:
        with self._connect() as connection:
            return self._document(connection, digest)

    def summaries(
        self,
        *,
        decision: str | None = None,
        since: float | None = None,
        content_id: str | None = None,
        limit: int = 50,
    ) -> list[VerdictSummary]:
        """The newest verdicts first, filtered."""
        columns = [verdicts.c[name] for name in VerdictSummary.__dataclass_fields__]
        query = sa.select(*columns).order_by(verdicts.c.decided_at.desc()).limit(limit)
        query = _filtered(query, decision=decision, since=since, content_id=content_id)
        with self._connect() as connection:
            return [VerdictSummary(**row._mapping) for row in connection.execute(query)]

    def count(self, *, decision: str | None = None, since: float | None = None) -> int:
        query = _filtered(sa.select(sa.func.count()).select_from(verdicts), decision=decision, since=since)
        with self._connect() as connection:
            return int(connection.execute(query).scalar_one())

    def scan(
        self, *, since: float | None = None, limit: int | None = None, batch: int = 1000
    ) -> Iterator[VerdictRecord]:
        """Records oldest first, `batch` rows per query (keyset pagination, constant memory)."""
        for row in self._scan(list(verdicts.c), since=since, limit=limit, batch=batch):
            yield VerdictRecord.from_row(row)

    def scan_for_replay(
        self, *, since: float | None = None, limit: int | None = None, batch: int = 1000
    ) -> Iterator[ReplayRow]:
        """scan() reading only what replay uses, the fusion document as its JSON: replay parses
        and validates it in one pass (gateway/orchestrator/stored.py)."""
        columns = [verdicts.c[name] for name in (*ReplayRow.COLUMNS, "fusion")]
        for row in self._scan(columns, since=since, limit=limit, batch=batch):
            yield ReplayRow.from_row(row)

    def scan_served(
        self, *, since: float | None = None, until: float | None = None, batch: int = 1000
    ) -> Iterator[ServedRow]:
        """Records decided in [since, until], oldest first, reading only what the canary report
        uses (no fusion document)."""
        columns = [verdicts.c[name] for name in ServedRow.COLUMNS]
        for row in self._scan(columns, since=since, until=until, limit=None, batch=batch):
            yield ServedRow.from_row(row)

    def _scan(
        self,
        columns: list[Any],
        *,
        since: float | None,
        limit: int | None,
        batch: int,
        until: float | None = None,
    ) -> Iterator[sa.Row[Any]]:
        after: tuple[float, str] | None = None
        left = limit
        while left is None or left > 0:
            size = batch if left is None else min(batch, left)
            query = _filtered(sa.select(*columns), since=since, until=until)
            if after is not None:
                query = query.where(sa.tuple_(verdicts.c.decided_at, verdicts.c.verdict_id) > after)
            query = query.order_by(verdicts.c.decided_at, verdicts.c.verdict_id).limit(size)
            with self._connect() as connection:
                rows = connection.execute(query).all()
            if not rows:
                return
            yield from rows
            after = (rows[-1].decided_at, rows[-1].verdict_id)
            if left is not None:
                left -= len(rows)

    # --- plumbing ------------------------------------------------------------------------------

    def connect(self) -> _Connection:
        """A connection whose database errors are StoreUnavailable: for the modules that keep
        their own tables in this store (labels.py)."""
        return _Connection(self.engine)

    _connect = connect

    @staticmethod
    def _find(connection: sa.Connection, caller: str, request_id: str) -> VerdictRecord | None:
        row = connection.execute(_FIND, {"caller": caller, "request_id": request_id}).first()
        return None if row is None else VerdictRecord.from_row(row)

    @staticmethod
    def _document(connection: sa.Connection, digest: str) -> dict[str, Any] | None:
        return connection.execute(sa.select(policies.c.document).where(policies.c.digest == digest)).scalar()


def _filtered(
    query: Any,
    *,
    decision: str | None = None,
    since: float | None = None,
    until: float | None = None,
    content_id: str | None = None,
) -> Any:
    if decision:
        query = query.where(verdicts.c.decision == decision.upper())
    if since is not None:
        query = query.where(verdicts.c.decided_at >= since)
    if until is not None:
        query = query.where(verdicts.c.decided_at <= until)
    if content_id:
        query = query.where(verdicts.c.content_id == content_id)
    return query


def _cause(exc: BaseException) -> str:
    original = getattr(exc, "orig", None) or exc
    return " ".join(str(original).split())[:300]


class _Connection:
    """engine.connect() whose database errors are StoreUnavailable (integrity errors stay)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.connection: sa.Connection | None = None

    def __enter__(self) -> sa.Connection:
        try:
            self.connection = self.engine.connect()
        except sa.exc.DBAPIError as exc:
            raise StoreUnavailable(f"the verdict store is unreachable: {_cause(exc)}") from exc
        return self.connection

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, _tb: object) -> None:
        assert self.connection is not None
        self.connection.close()
        if isinstance(exc, sa.exc.DBAPIError) and not isinstance(exc, sa.exc.IntegrityError):
            raise StoreUnavailable(f"the verdict store failed: {_cause(exc)}") from exc
