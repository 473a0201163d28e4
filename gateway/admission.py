"""Admission control: a bounded number of requests run at once, a bounded number wait briefly.

Beyond that the gateway says RESOURCE_EXHAUSTED at once with a "retry-after-ms" hint instead
of queueing without bound: under overload, latency stays bounded and callers back off. A
waiting request gives up at its queue timeout or just before its own deadline, whichever is
first, so it never waits for a slot it could no longer use.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

from gateway import metrics
from gateway.errors import Overloaded


class Admission:
    def __init__(
        self,
        *,
        max_inflight: int,
        max_queued: int = 0,
        queue_timeout_ms: int = 1000,
        retry_after_ms: int = 250,
    ) -> None:
        if max_inflight < 1:
            raise ValueError(f"max_inflight must be >= 1, got {max_inflight}")
        self.max_inflight = max_inflight
        self.max_queued = max_queued
        self.queue_timeout_s = queue_timeout_ms / 1000.0
        self.retry_after_ms = retry_after_ms
        self._inflight = 0
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    @property
    def inflight(self) -> int:
        return self._inflight

    @property
    def queued(self) -> int:
        return sum(1 for w in self._waiters if not w.done())

    def _retry_hint_ms(self) -> int:
        # More waiting work means a longer wait before a retry can expect a slot.
        return int(self.retry_after_ms * (1 + self.queued / self.max_inflight))

    def _reject(self, reason: str, message: str) -> Overloaded:
        metrics.REJECTED.labels(reason).inc()
        hint = self._retry_hint_ms()
        return Overloaded(
            f"{message}; retry after the delay in the retry-after-ms trailer ({hint} ms)",
            limit="max_inflight",
            value=self._inflight,
            maximum=self.max_inflight,
            retry_after_ms=hint,
        )

    async def acquire(self, deadline: float | None = None) -> float:
        """Take a slot (waiting in the bounded queue if allowed); returns the seconds waited.

        Raises Overloaded (RESOURCE_EXHAUSTED + retry-after-ms) when no slot can be had.
        Every successful acquire() must be paired with one release().
        """
        started = time.monotonic()
        if self._inflight < self.max_inflight and not self._waiters:
            self._inflight += 1
        else:
            if self.queued >= self.max_queued:
                raise self._reject(
                    "full",
                    f"the gateway is serving its maximum of {self.max_inflight} requests"
                    + (f" with {self.max_queued} waiting" if self.max_queued else ""),
                )
            budget = self.queue_timeout_s
            if deadline is not None:
                budget = min(budget, deadline - started)
            await self._wait(budget)
        metrics.INFLIGHT.set(self._inflight)
        return time.monotonic() - started

    def release(self) -> None:
        self._release()

    @asynccontextmanager
    async def slot(self, deadline: float | None = None) -> AsyncIterator[float]:
        """Hold one slot for the body; yields the seconds spent waiting for it."""
        waited = await self.acquire(deadline)
        try:
            yield waited
        finally:
            self._release()

    # `budget_s` is a queue wait budget, not a call timeout.
    async def _wait(self, budget_s: float) -> None:
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        metrics.QUEUED.set(self.queued)
        try:
            if budget_s <= 0:
                raise TimeoutError
            async with asyncio.timeout(budget_s):
                await asyncio.shield(waiter)
        except (TimeoutError, asyncio.CancelledError) as exc:
            if waiter.done() and not waiter.cancelled():
                # The slot was handed over just as we gave up: pass it on.
                self._release()
            else:
                waiter.cancel()
            if isinstance(exc, asyncio.CancelledError):
                raise
            raise self._reject(
                "queue_timeout", f"no free slot within {budget_s * 1000:.0f} ms (gateway overloaded)"
            ) from None
        finally:
            with suppress(ValueError):
                self._waiters.remove(waiter)
            metrics.QUEUED.set(self.queued)

    def _release(self) -> None:
        # Hand the slot straight to the oldest live waiter, so waiters are served in order
        # and a newcomer cannot overtake them.
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._inflight -= 1
        metrics.INFLIGHT.set(self._inflight)
