"""Group commit: verdicts that finish while a commit is in flight are committed together.

One transaction (one fsync, one round of statements) per batch instead of per verdict: under
load the store's throughput grows with the batch, and a verdict alone waits for nobody (a
batch starts as soon as nothing is in flight). Each caller still gets its own answer (stored or
not) or the batch's StoreUnavailable, before its reply is sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from modgate.store import VerdictRecord, VerdictStore

MAX_BATCH = 64
Item = tuple[VerdictRecord, str | None]
# run(operation, call) runs call(store) off the event loop (the ledger's _store_call).
Runner = Callable[[str, Callable[[VerdictStore], list[bool]]], Awaitable[list[bool]]]


class GroupCommit:
    def __init__(self, run: Runner, max_batch: int = MAX_BATCH) -> None:
        self._run = run
        self._max_batch = max_batch
        self._pending: list[tuple[Item, asyncio.Future[bool]]] = []
        self._flushing: asyncio.Task[None] | None = None

    async def commit(self, record: VerdictRecord, owner: str | None) -> bool:
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending.append(((record, owner), future))
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.create_task(self._flush(), name="verdict-group-commit")
        # Shielded: a caller that gives up must not cancel the batch other verdicts ride in.
        return await asyncio.shield(future)

    async def _flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[: self._max_batch], self._pending[self._max_batch :]
            items = [item for item, _ in batch]
            try:
                stored = await self._run("commit", lambda store, items=items: store.commit_batch(items))
            except Exception as exc:  # StoreUnavailable or a bug: every waiter gets the batch's error
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), new in zip(batch, stored, strict=True):
                if not future.done():
                    future.set_result(new)
