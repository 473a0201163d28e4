"""The ledger's background work: drain the spool into the store once it is back, prune.

Every SPOOL_CHECK_S, when the spool holds verdicts: try the store (opening it if it never
opened) and move them in; on success the store counts as up again. While the store is marked
down, ping it as often: a gateway whose policy refuses without a store serves again as soon
as it is back, not one backoff later. Every prune_interval_s:
delete verdicts older than retention_days. Failures are logged and retried; nothing here
can fail a request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from gateway import metrics
from gateway.ledger.ledger import VerdictLedger
from modgate.store import StoreUnavailable

log = logging.getLogger("gateway.ledger")
SPOOL_CHECK_S = 1.0
DAY_S = 86_400.0


class LedgerMaintenance:
    def __init__(self, ledger: VerdictLedger) -> None:
        self.ledger = ledger
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="ledger-maintenance")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def drain(self) -> int:
        """Move the spool into the store now; the number of verdicts stored."""
        ledger = self.ledger
        stored = await ledger.run_blocking(lambda: ledger.spool.drain(ledger.store()))
        ledger.mark_up()
        metrics.STORE_SPOOL_PENDING.set(0)
        return stored

    async def prune(self) -> int:
        settings = self.ledger.settings
        if settings.retention_days <= 0:
            return 0
        older_than = time.time() - settings.retention_days * DAY_S
        deleted = await self.ledger.run_blocking(lambda: self.ledger.store().prune(older_than=older_than))
        if deleted:
            log.info("verdict store: pruned %d verdicts older than %g days", deleted, settings.retention_days)
        return deleted

    async def probe(self) -> None:
        """Mark the store up if it answers (it is marked down after a failure)."""
        ledger = self.ledger
        await ledger.run_blocking(lambda: ledger.store().ping())
        ledger.mark_up()

    async def _run(self) -> None:
        next_prune = time.monotonic()
        while True:
            if self.ledger.marked_down():
                with contextlib.suppress(StoreUnavailable):
                    await self.probe()
            if self.ledger.spool.segments():
                try:
                    stored = await self.drain()
                    log.info("verdict store is back: %d spooled verdicts stored", stored)
                except StoreUnavailable as exc:
                    log.debug("spool not drained, the store is still down: %s", exc)
                except Exception:
                    log.exception("spool drain failed; retrying in %.0f s", SPOOL_CHECK_S)
            if time.monotonic() >= next_prune:
                next_prune = time.monotonic() + self.ledger.settings.prune_interval_s
                try:
                    await self.prune()
                except StoreUnavailable as exc:
                    log.warning("verdict store prune skipped, the store is down: %s", exc)
                except Exception:
                    log.exception("verdict store prune failed")
            await asyncio.sleep(SPOOL_CHECK_S)
