"""Circuit breaker transitions, retry classification and the pooled upstream client.

The client tests talk to real HTTP servers on 127.0.0.1 (aiohttp, in the test's event loop)
and to a port nobody listens on.
"""

from __future__ import annotations

import asyncio
import random
import socket
import time
from collections.abc import Awaitable, Callable

import httpx
import pytest
from aiohttp import web

from gateway.upstreams.breaker import BreakerState, CircuitBreaker
from gateway.upstreams.config import OrchestrationSettings
from gateway.upstreams.http import Upstream, UpstreamError
from gateway.upstreams.retry import RetryPolicy, is_transient_error, is_transient_status


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_breaker_opens_after_threshold_and_recovers_through_half_open() -> None:
    clock = Clock()
    changes: list[BreakerState] = []
    br = CircuitBreaker(
        "t", failure_threshold=3, reset_timeout_s=2.0, clock=clock, on_change=lambda _n, s: changes.append(s)
    )
    for _ in range(2):
        assert br.acquire()
        br.record_failure("boom")
    assert br.state == BreakerState.CLOSED
    br.record_success()  # resets the count: failures must be consecutive
    for _ in range(3):
        assert br.acquire()
        br.record_failure("boom")
    assert br.state == BreakerState.OPEN
    assert not br.acquire()
    assert br.retry_in_s() == pytest.approx(2.0)
    clock.now += 2.0
    assert br.state == BreakerState.HALF_OPEN
    assert br.acquire()  # one trial
    assert not br.acquire()  # only one trial at a time
    br.record_failure("still down")
    assert br.state == BreakerState.OPEN  # trial failed: open again, timer restarted
    clock.now += 1.0
    assert not br.acquire()
    clock.now += 1.0
    assert br.acquire()
    br.record_success()
    assert br.state == BreakerState.CLOSED
    assert changes == [
        BreakerState.OPEN,
        BreakerState.HALF_OPEN,
        BreakerState.OPEN,
        BreakerState.HALF_OPEN,
        BreakerState.CLOSED,
    ]


def test_breaker_release_frees_a_cancelled_trial() -> None:
    clock = Clock()
    br = CircuitBreaker("t", failure_threshold=1, reset_timeout_s=1.0, clock=clock)
    br.record_failure()
    clock.now += 1.0
    assert br.acquire()
    br.release()
    assert br.state == BreakerState.HALF_OPEN
    assert br.acquire()


def test_retry_classification_and_jittered_backoff() -> None:
    assert [s for s in (400, 404, 409, 422, 429, 500, 501, 502, 503, 504) if is_transient_status(s)] == [
        502,
        503,
        504,
    ]
    req = httpx.Request("POST", "http://x")
    assert is_transient_error(httpx.ConnectError("refused", request=req))
    assert is_transient_error(httpx.ConnectTimeout("slow connect", request=req))
    assert not is_transient_error(httpx.ReadTimeout("slow answer", request=req))
    assert not is_transient_error(ValueError("bug"))
    policy = RetryPolicy(max_attempts=4, base_ms=100, max_ms=300)
    rng = random.Random(7)
    delays = [[policy.backoff_s(a, rng) for a in (1, 2, 3)] for _ in range(200)]
    assert all(0 <= d[0] <= 0.1 and 0 <= d[1] <= 0.2 and 0 <= d[2] <= 0.3 for d in delays)
    assert len({round(d[0], 6) for d in delays}) > 150  # jittered, not a fixed schedule


# --- the client against real servers --------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def serve(handler: Handler) -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.router.add_post("/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}"


def settings(**kw: object) -> OrchestrationSettings:
    base = {
        "retry_max_attempts": 3,
        "retry_backoff_base_ms": 1,
        "retry_backoff_max_ms": 5,
        "breaker_failure_threshold": 3,
        "breaker_reset_timeout_s": 0.3,
    }
    base.update(kw)
    return OrchestrationSettings(**base)  # type: ignore[arg-type]


def counting(statuses: list[int]) -> tuple[list[int], Handler]:
    hits: list[int] = []

    async def handler(request: web.Request) -> web.Response:
        status = statuses[min(len(hits), len(statuses) - 1)]
        hits.append(status)
        return web.json_response({"n": len(hits)}, status=status)

    return hits, handler


def test_transient_503_is_retried_until_success() -> None:
    async def main() -> None:
        hits, handler = counting([503, 503, 200])
        runner, url = await serve(handler)
        up = Upstream("text", "stable", url, settings())
        try:
            response = await up.post("/classify", deadline=time.monotonic() + 5, json={})
            assert response.json() == {"n": 3}
            assert hits == [503, 503, 200]
        finally:
            await up.aclose()
            await runner.cleanup()

    asyncio.run(main())


@pytest.mark.parametrize("status", [400, 422, 500])
def test_non_transient_status_is_not_retried(status: int) -> None:
    async def main() -> None:
        hits, handler = counting([status, 200])
        runner, url = await serve(handler)
        up = Upstream("text", "stable", url, settings())
        try:
            with pytest.raises(UpstreamError) as err:
                await up.post("/classify", deadline=time.monotonic() + 5, json={})
            assert err.value.status == status
            assert hits == [status]
        finally:
            await up.aclose()
            await runner.cleanup()

    asyncio.run(main())


def test_retries_are_bounded_and_open_the_breaker_then_recover() -> None:
    async def main() -> None:
        port = free_port()  # nothing listens here: connect refused
        up = Upstream("speech", "stable", f"http://127.0.0.1:{port}", settings())
        try:
            with pytest.raises(UpstreamError) as err:
                await up.post("/transcribe", deadline=time.monotonic() + 5, content=b"x")
            assert err.value.kind == "connect"
            assert "after 3 attempt(s)" in str(err.value)
            assert up.breaker.state == BreakerState.OPEN  # 3 failures = threshold
            started = time.monotonic()
            with pytest.raises(UpstreamError) as err:
                await up.post("/transcribe", deadline=time.monotonic() + 5, content=b"x")
            assert err.value.kind == "circuit_open"
            assert time.monotonic() - started < 0.05  # fails fast, no connect attempt

            # The service comes back on that port; after the reset timeout a probe closes it.
            _hits, handler = counting([200])
            app = web.Application()
            app.router.add_post("/{tail:.*}", handler)
            runner = web.AppRunner(app)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", port).start()
            await asyncio.sleep(0.35)
            assert up.breaker.state == BreakerState.HALF_OPEN
            response = await up.post("/transcribe", deadline=time.monotonic() + 5, content=b"x")
            assert response.status_code == 200
            assert up.breaker.state == BreakerState.CLOSED
            await runner.cleanup()
        finally:
            await up.aclose()

    asyncio.run(main())


def test_slow_upstream_times_out_at_the_deadline_without_retry() -> None:
    async def main() -> None:
        calls: list[float] = []

        async def slow(request: web.Request) -> web.Response:
            calls.append(time.monotonic())
            await asyncio.sleep(2)
            return web.json_response({})

        runner, url = await serve(slow)
        up = Upstream("vision", "stable", url, settings())
        try:
            started = time.monotonic()
            with pytest.raises(UpstreamError) as err:
                await up.post("/score", deadline=started + 0.2, json={})
            elapsed = time.monotonic() - started
            assert err.value.timed_out
            assert 0.19 <= elapsed < 0.3
            assert len(calls) == 1
        finally:
            await up.aclose()
            await runner.cleanup()

    asyncio.run(main())


def test_connections_are_pooled() -> None:
    async def main() -> None:
        peers: set[object] = set()

        async def handler(request: web.Request) -> web.Response:
            peers.add(request.transport.get_extra_info("peername"))  # type: ignore[union-attr]
            return web.json_response({})

        runner, url = await serve(handler)
        up = Upstream("text", "stable", url, settings())
        try:
            for _ in range(10):
                await up.post("/classify", deadline=time.monotonic() + 5, json={})
            assert len(peers) == 1  # ten sequential calls, one kept-alive connection
        finally:
            await up.aclose()
            await runner.cleanup()

    asyncio.run(main())
