"""A request's text as bounded batches, and the lane that lets small requests' text go first.

The text service scores every call's windows first come, first served, in one model thread:
one large call delays every call behind it, and past ~10 s of queued work BentoML answers 503
("process is overloaded") to everybody. So the gateway never sends it a large call:

- a request's text items go in batches of at most `text_batch_items` items and
  `text_batch_chars` characters (an item longer than that is a batch of its own; the service
  truncates at MODGATE_TEXT_MAX_CHARS anyway);
- a request whose text fits one batch (a title, a transcript: nearly every request) is sent at
  once;
- a request with several batches ("bulk") sends at most `text_request_concurrency` of them at a
  time, and only through the lane of its text upstream: at most `text_bulk_inflight` bulk
  batches at the service, gateway-wide, handed out first come, first served (a request queues
  its next batch behind the others', so bulk requests interleave), and each starts only once no
  small call has been in flight for `text_bulk_idle_ms`: bulk text runs in the service's idle
  time. With `text_bulk_max_wait_ms` set, a batch that has waited that long starts anyway (bulk
  always progresses, at the others' expense); by default it never does: measured with callers
  keeping the service busy, forcing a batch every 2 s quadrupled their p95, while yielding kept
  it within 6% (bench/README.md, "Cost admission"). A request's batches that get no turn before
  its deadline end its TEXT as TIMED_OUT.

Cancellation: the batches run in a TaskGroup; one failing or the request ending (its verdict
sent, its deadline passed, its caller gone) cancels every other batch, waiting or in flight,
and their retries, so nothing of a request runs after its verdict.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import math
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from gateway import metrics
from gateway.upstreams.config import OrchestrationSettings
from gateway.upstreams.http import Upstream
from gateway.upstreams.services import classify
from modgate.wire import TextItem, TextResult


def text_batches(items: Sequence[TextItem], *, max_items: int, max_chars: int) -> list[list[TextItem]]:
    """Consecutive items in batches of at most max_items items and max_chars characters."""
    batches: list[list[TextItem]] = []
    current: list[TextItem] = []
    chars = 0
    for item in items:
        if current and (len(current) >= max_items or chars + len(item.text) > max_chars):
            batches.append(current)
            current, chars = [], 0
        current.append(item)
        chars += len(item.text)
    if current:
        batches.append(current)
    return batches


class TextLane:
    """One text upstream's share of bulk batches: few at a time, in the service's idle time."""

    def __init__(self, variant: str, *, bulk_inflight: int, idle_s: float, max_wait_s: float = 0.0) -> None:
        self.variant = variant
        self.bulk_inflight = bulk_inflight
        self.idle_s = idle_s
        self.max_wait_s = max_wait_s if max_wait_s > 0 else math.inf  # 0: never forced
        self._small = 0  # single-batch calls in flight
        self._small_ended = 0.0  # time.monotonic() when the last one ended
        self._bulk = 0
        self._tickets = itertools.count()
        self._queue: collections.OrderedDict[int, float] = collections.OrderedDict()  # ticket -> arrival
        self._changed = asyncio.Event()

    @asynccontextmanager
    async def small(self) -> AsyncIterator[None]:
        """A single-batch call: never waits, holds bulk back while it runs."""
        self._small += 1
        try:
            yield
        finally:
            self._small -= 1
            self._small_ended = time.monotonic()
            self._changed.set()

    @asynccontextmanager
    async def bulk(self, deadline: float) -> AsyncIterator[None]:
        """One batch of a multi-batch request, once its turn has come; TimeoutError (before the
        body runs) when it has not come by `deadline` (time.monotonic())."""
        ticket = next(self._tickets)
        self._queue[ticket] = time.monotonic()
        metrics.TEXT_BATCHES_WAITING.labels(self.variant).set(len(self._queue))
        try:
            async with asyncio.timeout_at(_loop_time(deadline)):
                while (wait := self._turn_in(ticket)) > 0:
                    # No await between computing the turn and waiting: no wake-up is lost.
                    self._changed.clear()
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(None if math.isinf(wait) else wait):
                            await self._changed.wait()
        finally:
            del self._queue[ticket]
            metrics.TEXT_BATCHES_WAITING.labels(self.variant).set(len(self._queue))
            self._changed.set()  # the next in line may be up
        self._bulk += 1
        try:
            yield
        finally:
            self._bulk -= 1
            self._changed.set()

    def _turn_in(self, ticket: int) -> float:
        """0 when `ticket` may start now, else how long to wait before looking again (inf: until
        something changes)."""
        if next(iter(self._queue)) != ticket or self._bulk >= self.bulk_inflight:
            return math.inf
        now = time.monotonic()
        waited = now - self._queue[ticket]
        if waited >= self.max_wait_s:
            return 0.0
        if self._small:
            return self.max_wait_s - waited
        idle_left = self.idle_s - (now - self._small_ended)
        return max(0.0, min(idle_left, self.max_wait_s - waited))


def _loop_time(deadline: float) -> float:
    """time.monotonic() deadline -> the running loop's clock."""
    return asyncio.get_running_loop().time() + (deadline - time.monotonic())


class TextScorer:
    """Scores a request's text items against one text upstream, in bounded batches."""

    def __init__(self, settings: OrchestrationSettings) -> None:
        self.settings = settings
        self._lanes: dict[str, TextLane] = {}

    def lane(self, variant: str) -> TextLane:
        if variant not in self._lanes:
            s = self.settings
            self._lanes[variant] = TextLane(
                variant,
                bulk_inflight=s.text_bulk_inflight,
                idle_s=s.text_bulk_idle_ms / 1000.0,
                max_wait_s=s.text_bulk_max_wait_ms / 1000.0,
            )
        return self._lanes[variant]

    async def score(
        self, up: Upstream, items: Sequence[TextItem], *, policy: str, policy_version: str, deadline: float
    ) -> list[TextResult]:
        s = self.settings
        batches = text_batches(items, max_items=s.text_batch_items, max_chars=s.text_batch_chars)
        lane = self.lane(up.variant)
        if len(batches) == 1:
            async with lane.small():
                return [
                    await classify(
                        up, batches[0], policy=policy, policy_version=policy_version, deadline=deadline
                    )
                ]
        gate = asyncio.Semaphore(s.text_request_concurrency)
        results: list[TextResult | None] = [None] * len(batches)

        async def one(index: int) -> None:
            async with gate:
                try:
                    async with lane.bulk(deadline):
                        results[index] = await classify(
                            up,
                            batches[index],
                            policy=policy,
                            policy_version=policy_version,
                            deadline=deadline,
                        )
                except TimeoutError:  # from the lane: classify reports its own as UpstreamError
                    raise up._fail(
                        "no turn at the text service before the deadline: this request's text is "
                        f"{len(batches)} batches, which yield to smaller requests; send less text or "
                        "allow a longer deadline",
                        "timeout",
                    ) from None

        try:
            async with asyncio.TaskGroup() as group:
                for index in range(len(batches)):
                    group.create_task(one(index))
        except ExceptionGroup as failed:
            # The first failure is the request's; the TaskGroup has cancelled every other batch.
            raise failed.exceptions[0] from None
        return [r for r in results if r is not None]
