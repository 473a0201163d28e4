"""VerdictLedger: every verdict committed to the store before its reply, duplicates answered
from it, concurrent duplicates coalesced into one computation.

    verdict = await ledger.decide(entry, policy, compute)

- A request whose caller chose its request_id is first looked up: decided already -> the
  stored verdict (from_store, no model called, no admission slot taken); being decided in
  this process -> wait for that computation; claimed by another gateway sharing the store ->
  poll until its verdict is there (or its claim expires: then this one computes). A stored
  request_id with another request digest is ALREADY_EXISTS.
- compute() runs admission and the pipeline; its verdict gets a verdict_id and decided_at_ms
  and is committed (the claim released in the same transaction; verdicts finishing together
  share one: group_commit.py) before decide() returns it.
- Store down (any database error; it is then not tried again for down_backoff_s): the policy's
  store.on_unavailable says spool (answer; the record goes to the local append-only spool, fsynced
  first, drained into the store by the maintenance task) or refuse (UNAVAILABLE). Duplicates
  are not detected while the store is down (counted as `unstored`).

Store calls run on a small thread pool of their own (SQLAlchemy is synchronous), never on
the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from gateway import metrics
from gateway.context import RequestContext
from gateway.errors import AlreadyExists, DeadlineExceeded, Unavailable
from gateway.ledger.entry import LedgerEntry
from gateway.ledger.group_commit import GroupCommit
from gateway.ledger.records import record_of, stamp, stored_answer
from gateway.ledger.thumbnails import evidence_thumbnails
from modgate.policy import Policy, StoreUnavailableAction
from modgate.store import Claimed, Decided, StoreSettings, StoreUnavailable, VerdictRecord, VerdictStore
from modgate.store.records import PolicyStamp, Thumbnail
from modgate.store.spool import VerdictSpool
from modgate.v1 import moderation_pb2 as pb

log = logging.getLogger("gateway.ledger")
T = TypeVar("T")
# compute() answers the verdict and the context its pipeline ran in (its fusion record).
Compute = Callable[[], Awaitable[tuple[pb.Verdict, RequestContext | None]]]
# A claim outlives its owner's deadline by this much before a duplicate may take it over.
CLAIM_MARGIN_S = 5.0
# Store operations that only read when the store is unshared (SQLite): run on the event loop.
INLINE_ON_SQLITE = frozenset({"claim", "find"})


class VerdictLedger:
    def __init__(self, settings: StoreSettings, *, store: VerdictStore | None = None) -> None:
        self.settings = settings
        self.spool = VerdictSpool(settings.spool_dir)
        self._store = store
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="verdict-store")
        self._down_until = 0.0
        self._inflight: dict[tuple[str, str], asyncio.Event] = {}
        self._stamps: dict[int, tuple[Policy, PolicyStamp]] = {}
        self._owner = f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._claims = 0
        self._group = GroupCommit(self._store_call)

    # --- the request path ------------------------------------------------------------------------

    async def decide(self, entry: LedgerEntry, policy: Policy, compute: Compute) -> pb.Verdict:
        if not entry.idempotent:
            verdict, ctx = await compute()
            return await self._commit(entry, policy, verdict, ctx, owner=None)
        started, waited = time.monotonic(), False
        while True:
            waiting = self._inflight.get(entry.key)
            if waiting is not None:  # this process is deciding it: wait for that one
                waited = _count_wait(waited)
                await self._wait(waiting, entry)
                continue
            event = self._inflight[entry.key] = asyncio.Event()
            try:
                answer = await self._decide_once(entry, policy, compute, started)
            finally:
                del self._inflight[entry.key]
                event.set()
            if answer is not None:
                return answer
            waited = _count_wait(waited)  # another gateway holds it: poll again

    async def _decide_once(
        self, entry: LedgerEntry, policy: Policy, compute: Compute, started: float
    ) -> pb.Verdict | None:
        """The verdict, or None when another gateway's claim ended without one (try again)."""
        owner = self._next_owner()
        try:
            outcome = await self._store_call("claim", self._claim, entry, owner)
        except StoreUnavailable as exc:
            self._refuse_if_policy_says(policy, exc)
            metrics.STORE_OUTCOMES.labels("unstored").inc()
            log.warning(
                "request %s: duplicates not checked, the verdict store is down: %s", entry.request_id, exc
            )
            verdict, ctx = await compute()
            return await self._commit(entry, policy, verdict, ctx, owner=None)
        if isinstance(outcome, Decided):
            return self._answer(entry, outcome.record, started)
        if isinstance(outcome, Claimed):
            try:
                verdict, ctx = await compute()
            except BaseException:
                await self._release(entry, owner)
                raise
            return await self._commit(entry, policy, verdict, ctx, owner=owner)
        if outcome.request_digest != entry.digest:
            raise _reused(entry)
        await self._sleep_within(entry, self.settings.claim_poll_s)
        return None

    def _thumbnails(self, verdict: pb.Verdict, ctx: RequestContext | None) -> tuple[Thumbnail, ...]:
        if not self.settings.thumbnails or ctx is None or not ctx.frames:
            return ()
        return evidence_thumbnails(
            verdict,
            ctx.frames,
            max_side=self.settings.thumbnail_max_side,
            limit=self.settings.thumbnails_per_verdict,
        )

    def _claim(self, store: VerdictStore, entry: LedgerEntry, owner: str) -> Any:
        lease = max(entry.remaining_s(), 0.0) + CLAIM_MARGIN_S
        return store.claim(entry.caller, entry.request_id, owner, entry.digest, lease)

    def _answer(self, entry: LedgerEntry, record: VerdictRecord, started: float) -> pb.Verdict:
        if record.request_digest != entry.digest:
            raise _reused(entry)
        metrics.STORE_OUTCOMES.labels("from_store").inc()
        return stored_answer(record, {"store_lookup": (time.monotonic() - started) * 1000.0})

    async def _commit(
        self,
        entry: LedgerEntry,
        policy: Policy,
        verdict: pb.Verdict,
        ctx: RequestContext | None,
        *,
        owner: str | None,
    ) -> pb.Verdict:
        record = record_of(entry, verdict, ctx, self._stamp(policy), self._thumbnails(verdict, ctx))
        try:
            stored = await self._group.commit(record, owner)
        except StoreUnavailable as exc:
            self._refuse_if_policy_says(policy, exc)
            await self._spool(record, exc)
            return verdict
        if not stored:  # a duplicate that took over an expired claim got there first: its verdict
            existing = await self._store_call(
                "find", lambda store: store.find(entry.caller, entry.request_id)
            )
            if existing is not None and existing.verdict_id != record.verdict_id:
                return stored_answer(existing, {})
        metrics.STORE_OUTCOMES.labels("stored").inc()
        return verdict

    async def _spool(self, record: VerdictRecord, cause: StoreUnavailable) -> None:
        try:
            await asyncio.get_running_loop().run_in_executor(self._pool, self.spool.append, record)
        except OSError as exc:
            metrics.STORE_OUTCOMES.labels("refused").inc()
            raise Unavailable(
                f"the verdict store is down ({cause}) and the local spool {self.spool.directory} cannot "
                f"be written ({exc}): no verdict can be kept; retry later"
            ) from None
        metrics.STORE_OUTCOMES.labels("spooled").inc()
        metrics.STORE_SPOOL_PENDING.inc()
        log.warning(
            "verdict %s spooled (%s): the verdict store is down: %s",
            record.verdict_id,
            self.spool.directory,
            cause,
        )

    def _refuse_if_policy_says(self, policy: Policy, exc: StoreUnavailable) -> None:
        if policy.store.on_unavailable is StoreUnavailableAction.REFUSE:
            metrics.STORE_OUTCOMES.labels("refused").inc()
            raise Unavailable(
                f"the verdict store is unavailable ({exc}) and policy {policy.name!r} does not answer "
                "without keeping the verdict (store.on_unavailable: refuse); retry later"
            )

    async def _release(self, entry: LedgerEntry, owner: str) -> None:
        # On failure the claim expires on its own (CLAIM_MARGIN_S after the deadline).
        with contextlib.suppress(StoreUnavailable, asyncio.CancelledError):
            await asyncio.shield(
                self._store_call("release", lambda s: s.release(entry.caller, entry.request_id, owner))
            )

    async def _wait(self, event: asyncio.Event, entry: LedgerEntry) -> None:
        try:
            await asyncio.wait_for(event.wait(), timeout=max(entry.remaining_s(), 0.0))
        except TimeoutError:
            raise _still_deciding(entry) from None

    async def _sleep_within(self, entry: LedgerEntry, seconds: float) -> None:
        if entry.remaining_s() <= seconds:
            raise _still_deciding(entry)
        await asyncio.sleep(seconds)

    # --- the store -------------------------------------------------------------------------------

    async def _store_call(self, operation: str, call: Callable[..., T], *args: Any) -> T:
        """call(store, *args) on the ledger's threads; StoreUnavailable while the store is down.
        A lookup in a local SQLite store runs inline: a WAL read takes a fraction of a
        millisecond and never waits for a writer, less than handing it to a thread and back
        costs on a busy machine."""
        if time.monotonic() < self._down_until:
            raise StoreUnavailable("marked down after a recent failure")
        started = time.monotonic()
        try:
            if operation in INLINE_ON_SQLITE and self._store is not None and not self._store.shared:
                result = self._call(call, args)
            else:
                result = await asyncio.get_running_loop().run_in_executor(self._pool, self._call, call, args)
        except StoreUnavailable:
            self._down_until = time.monotonic() + self.settings.down_backoff_s
            raise
        metrics.STORE_SECONDS.labels(operation).observe(time.monotonic() - started)
        return result

    def _call(self, call: Callable[..., T], args: tuple[Any, ...]) -> T:
        return call(self.store(), *args)

    def store(self) -> VerdictStore:
        """The store, opened (and migrated) on first use; StoreUnavailable while it cannot be."""
        if self._store is None:
            self._store = VerdictStore.open(self.settings)
        return self._store

    def mark_up(self) -> None:
        self._down_until = 0.0

    def marked_down(self) -> bool:
        return time.monotonic() < self._down_until

    def _stamp(self, policy: Policy) -> PolicyStamp:
        # By identity: the gateway loads each policy once, and Policy.digest hashes the whole
        # document (a fifth of a millisecond per request).
        held = self._stamps.get(id(policy))
        if held is None or held[0] is not policy:
            held = self._stamps[id(policy)] = (policy, stamp(policy))
        return held[1]

    def _next_owner(self) -> str:
        self._claims += 1
        return f"{self._owner}:{self._claims}"

    def run_blocking(self, call: Callable[[], T]) -> Awaitable[T]:
        """Run `call` on the ledger's threads (the maintenance task's drain and prune)."""
        return asyncio.get_running_loop().run_in_executor(self._pool, call)

    async def aclose(self) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self._pool.shutdown)
        if self._store is not None:
            self._store.close()


def _count_wait(counted: bool) -> bool:
    if not counted:
        metrics.STORE_OUTCOMES.labels("coalesced").inc()
    return True


def _reused(entry: LedgerEntry) -> AlreadyExists:
    return AlreadyExists(
        f"request_id {entry.request_id!r} was already used by this caller for a different request "
        "(content_id, text, options or media differ): a request_id names one request; send a new one"
    )


def _still_deciding(entry: LedgerEntry) -> DeadlineExceeded:
    return DeadlineExceeded(
        f"request_id {entry.request_id!r} is still being decided by an earlier call and the deadline "
        "passed while waiting for it; retry with the same request_id to get that verdict"
    )
