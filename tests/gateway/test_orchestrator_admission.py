"""Admission control: bounded running + bounded waiting, RESOURCE_EXHAUSTED with a retry hint."""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest

from gateway.admission import Admission
from gateway.errors import Overloaded, grpc_status


def test_full_gateway_rejects_at_once_with_retry_hint() -> None:
    async def main() -> None:
        adm = Admission(max_inflight=2, max_queued=1, queue_timeout_ms=5000, retry_after_ms=100)
        release = asyncio.Event()
        order: list[str] = []

        async def hold(name: str) -> None:
            async with adm.slot():
                order.append(name)
                await release.wait()

        holders = [asyncio.create_task(hold(n)) for n in ("a", "b", "c")]
        await asyncio.sleep(0.05)
        assert (adm.inflight, adm.queued) == (2, 1)
        started = time.monotonic()
        with pytest.raises(Overloaded) as err:
            async with adm.slot():
                pass
        assert time.monotonic() - started < 0.05  # no waiting when the queue is full too
        code, message, trailers = grpc_status(err.value)
        assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert trailers[0][0] == "retry-after-ms" and int(trailers[0][1]) >= 100
        assert "maximum of 2 requests with 1 waiting" in message
        release.set()
        await asyncio.gather(*holders)
        assert order == ["a", "b", "c"]  # the waiter got the first freed slot
        assert (adm.inflight, adm.queued) == (0, 0)

    asyncio.run(main())


def test_waiter_gives_up_at_queue_timeout_or_deadline() -> None:
    async def main() -> None:
        adm = Admission(max_inflight=1, max_queued=4, queue_timeout_ms=150)
        release = asyncio.Event()

        async def hold() -> None:
            async with adm.slot():
                await release.wait()

        holder = asyncio.create_task(hold())
        await asyncio.sleep(0.01)
        started = time.monotonic()
        with pytest.raises(Overloaded):
            async with adm.slot():
                pass
        assert 0.14 <= time.monotonic() - started < 0.3
        started = time.monotonic()
        with pytest.raises(Overloaded):
            async with adm.slot(deadline=time.monotonic() + 0.05):
                pass
        assert time.monotonic() - started < 0.12
        release.set()
        await holder
        # Slots are all back: a new request gets in without waiting.
        async with adm.slot() as ticket:
            assert ticket.waited_s < 0.01
        assert adm.inflight == 0

    asyncio.run(main())


def test_cancelled_waiter_does_not_leak_a_slot() -> None:
    async def main() -> None:
        adm = Admission(max_inflight=1, max_queued=2, queue_timeout_ms=5000)
        release = asyncio.Event()

        async def hold() -> None:
            async with adm.slot():
                await release.wait()

        holder = asyncio.create_task(hold())
        await asyncio.sleep(0.01)
        waiter = asyncio.create_task(hold())
        await asyncio.sleep(0.01)
        waiter.cancel()
        release.set()
        await holder
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert (adm.inflight, adm.queued) == (0, 0)

    asyncio.run(main())
