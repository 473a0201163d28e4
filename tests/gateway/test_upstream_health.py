"""Active health checks against real sockets on 127.0.0.1: a port that accepts connections and
never answers (what a BentoML service whose worker died looks like: its supervisor still holds
the listening socket), a port nobody listens on, and real HTTP servers (aiohttp) that answer.

Every upstream here gets a service label no other test uses, so the metrics are its own.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager

import httpx
import pytest
from aiohttp import web

from gateway import metrics
from gateway.upstreams.breaker import BreakerState, CircuitBreaker
from gateway.upstreams.config import CanaryEndpoint, Endpoint, OrchestrationSettings, ServiceUpstreams
from gateway.upstreams.health import HealthMonitor, UpstreamProbe
from gateway.upstreams.http import Upstream, UpstreamError
from gateway.upstreams.services import ServicePool
from modgate.policy import Modality
from tests.gateway.test_upstream_resilience import Clock, free_port

pytestmark = pytest.mark.timeout(60)

INTERVAL_S = 0.2
TIMEOUT_S = 0.2
# Detection takes at most an interval plus two rounds (the default threshold 2); the rest is a
# noisy 2-core machine.
DETECT_S = INTERVAL_S + 2 * TIMEOUT_S + 0.4


def settings(**kw: object) -> OrchestrationSettings:
    base: dict[str, object] = {
        "retry_max_attempts": 3,
        "retry_backoff_base_ms": 1,
        "retry_backoff_max_ms": 5,
        "breaker_failure_threshold": 3,
        "breaker_reset_timeout_s": 0.3,
        "health_check_interval_s": INTERVAL_S,
        "health_check_timeout_s": TIMEOUT_S,
        "health_healthy_threshold": 2,
    }
    base.update(kw)
    return OrchestrationSettings(**base)  # type: ignore[arg-type]


def silent_socket() -> socket.socket:
    """A listening socket whose connections the kernel accepts (backlog) and nobody ever reads
    or answers: a BentoML supervisor holding the port of its dead worker."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    return sock


@contextmanager
def silent_port() -> Iterator[int]:
    with silent_socket() as sock:
        yield int(sock.getsockname()[1])


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def ok(_request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


async def serve_on(port: int, ready: Handler = ok, post: Handler = ok) -> web.AppRunner:
    app = web.Application()
    app.router.add_get("/readyz", ready)
    app.router.add_post("/{tail:.*}", post)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, reuse_address=True).start()
    return runner


def sample(name: str, **labels: str) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


def pool(
    service: str, url: str, s: OrchestrationSettings, canary: CanaryEndpoint | None = None
) -> ServicePool:
    return ServicePool(service, ServiceUpstreams(stable=Endpoint(url=url), canary=canary), s)


async def wait_until(check: Callable[[], bool], timeout_s: float) -> float:
    """Seconds until check() held; fails the test when it does not within timeout_s."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < timeout_s, f"not true within {timeout_s} s"
        await asyncio.sleep(0.01)
    return time.monotonic() - started


def test_a_held_breaker_stays_open_until_released() -> None:
    clock = Clock()
    changes: list[BreakerState] = []
    br = CircuitBreaker("t", reset_timeout_s=1.0, clock=clock, on_change=lambda _n, s: changes.append(s))
    br.hold_open("GET /readyz got no answer")
    assert br.state == BreakerState.OPEN and not br.acquire()
    clock.now += 60  # far past the reset timeout: no half-open trial while held
    assert br.state == BreakerState.OPEN and not br.acquire()
    br.record_success()  # a call that was already in flight does not overrule the probe
    br.record_failure("timeout")
    assert br.state == BreakerState.OPEN and br.last_error == "GET /readyz got no answer"
    assert br.held and br.retry_in_s() == 0.0
    br.release_hold()
    assert br.state == BreakerState.CLOSED and br.acquire() and br.consecutive_failures == 0
    assert not br.held and br.last_error == ""
    assert changes == [BreakerState.OPEN, BreakerState.CLOSED]


def test_a_silent_upstream_is_found_by_its_probe_fails_its_calls_at_once_then_recovers() -> None:
    service = "health-silent"
    labels = {"service": service, "variant": "stable"}

    async def main() -> None:
        silent = silent_socket()
        port = int(silent.getsockname()[1])
        s = settings()
        p = pool(service, f"http://127.0.0.1:{port}", s)
        monitor = HealthMonitor({service: p}, s)
        up = p.stable
        runner: web.AppRunner | None = None
        await monitor.start()
        try:
            # A call already in flight when the upstream goes silent is failed at detection,
            # not at its 10 s deadline.
            started = time.monotonic()
            with pytest.raises(UpstreamError) as err:
                await up.post("/moderate", deadline=started + 10, json={})
            elapsed = time.monotonic() - started
            assert err.value.kind == "unhealthy" and "readiness probe" in str(err.value), err.value
            assert elapsed < DETECT_S, elapsed
            assert not up.healthy and up.breaker.state == BreakerState.OPEN
            # Calls now fail at once, saying why.
            started = time.monotonic()
            with pytest.raises(UpstreamError) as err:
                await up.post("/moderate", deadline=time.monotonic() + 10, json={})
            assert time.monotonic() - started < 0.05
            assert err.value.kind == "circuit_open" and "has had no answer for" in str(err.value)
            assert sample("modgate_gateway_upstream_healthy", **labels) == 0
            assert sample("modgate_gateway_breaker_state", **labels) == 2
            assert sample("modgate_gateway_upstream_probes_total", **labels, outcome="timeout") >= 1
            assert sample("modgate_gateway_upstream_probe_duration_seconds_count", **labels) >= 1

            # The service is back on its port: healthy after two passing probes (the second
            # confirms the first at once, not an interval later), calls go through.
            passed_before = sample("modgate_gateway_upstream_probes_total", **labels, outcome="ok")
            silent.close()
            runner = await serve_on(port)
            recovered = await wait_until(lambda: up.healthy, INTERVAL_S + 2 * TIMEOUT_S + 0.4)
            passed = sample("modgate_gateway_upstream_probes_total", **labels, outcome="ok") - passed_before
            assert passed >= 2, (passed, recovered)  # two probes, not one
            assert up.breaker.state == BreakerState.CLOSED
            response = await up.post("/moderate", deadline=time.monotonic() + 5, json={})
            assert response.json() == {"ok": True}
            assert sample("modgate_gateway_upstream_healthy", **labels) == 1
            assert sample("modgate_gateway_breaker_state", **labels) == 0
        finally:
            silent.close()
            await monitor.stop()
            await p.aclose()
            if runner is not None:
                await runner.cleanup()

    asyncio.run(main())


def test_a_refused_connection_opens_the_breaker_at_once() -> None:
    service = "health-refused"

    async def main() -> None:
        port = free_port()
        runner = await serve_on(port)
        # A long interval: only the start probe and the wake-up by a refused call can find it.
        s = settings(health_check_interval_s=30.0)
        p = pool(service, f"http://127.0.0.1:{port}", s)
        monitor = HealthMonitor({service: p}, s)
        up = p.stable
        await monitor.start()
        try:
            await wait_until(
                lambda: (
                    sample(
                        "modgate_gateway_upstream_probes_total",
                        service=service,
                        variant="stable",
                        outcome="ok",
                    )
                    >= 1
                ),
                2.0,
            )
            assert up.healthy
            await runner.cleanup()  # nobody listens on the port any more
            started = time.monotonic()
            calls = [up.post("/moderate", deadline=started + 10, json={}) for _ in range(20)]
            errors = await asyncio.gather(*calls, return_exceptions=True)
            elapsed = time.monotonic() - started
            # The first refused attempts asked for a probe, which found nobody listening: the
            # retries were refused by the breaker instead of connecting again.
            for err in errors:
                assert isinstance(err, UpstreamError), err
                assert err.kind == "circuit_open" and "cannot connect" in str(err), err
            assert elapsed < 0.5, elapsed
            assert not up.healthy and up.breaker.held
            assert (
                sample(
                    "modgate_gateway_upstream_probes_total",
                    service=service,
                    variant="stable",
                    outcome="refused",
                )
                == 1  # twenty calls asked for it: one probe
            )
        finally:
            await monitor.stop()
            await p.aclose()

    asyncio.run(main())


def test_a_dropped_connection_asks_for_a_probe_at_once() -> None:
    service = "health-dropped"

    async def main() -> None:
        dropping = False

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            # A real HTTP/1.1 server until it starts dropping every connection unanswered.
            while not dropping:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    (
                        int(line.split(b":")[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length")
                    ),
                    0,
                )
                await reader.readexactly(length)
                if dropping:
                    break
                writer.write(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-type: application/json\r\n\r\n{}"
                )
                await writer.drain()
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        s = settings(health_check_interval_s=30.0)  # only the start probe and a call's request
        p = pool(service, f"http://127.0.0.1:{port}", s)
        monitor = HealthMonitor({service: p}, s)
        up = p.stable
        await monitor.start()
        try:
            await up.post("/x", deadline=time.monotonic() + 5, json={})
            await wait_until(
                lambda: (
                    sample(
                        "modgate_gateway_upstream_probes_total",
                        service=service,
                        variant="stable",
                        outcome="ok",
                    )
                    >= 1
                ),
                2.0,
            )
            dropping = True
            with pytest.raises(UpstreamError):
                await up.post("/x", deadline=time.monotonic() + 5, json={})
            found = await wait_until(lambda: not up.healthy, 1.0)  # not after the 30 s interval
            assert found < 0.5 and up.breaker.held, found
        finally:
            await monitor.stop()
            await p.aclose()
            server.close()
            await server.wait_closed()

    asyncio.run(main())


def test_a_503_asks_for_a_probe_at_once_and_only_a_failing_readyz_makes_it_unhealthy() -> None:
    service = "health-call-503"

    async def main() -> None:
        loading = False

        async def ready(_request: web.Request) -> web.Response:
            return web.Response(status=503 if loading else 200, text="model loading" if loading else "ok")

        async def overloaded(_request: web.Request) -> web.Response:
            return web.Response(status=503, text="process is overloaded")

        def probes(outcome: str) -> float:
            return sample(
                "modgate_gateway_upstream_probes_total", service=service, variant="stable", outcome=outcome
            )

        port = free_port()
        runner = await serve_on(port, ready=ready, post=overloaded)
        # Only the start probe and the calls' requests; the passive breaker out of the way.
        s = settings(health_check_interval_s=30.0, breaker_failure_threshold=10)
        p = pool(service, f"http://127.0.0.1:{port}", s)
        monitor = HealthMonitor({service: p}, s)
        up = p.stable
        await monitor.start()
        try:
            await wait_until(lambda: probes("ok") >= 1, 2.0)
            # Overloaded (BentoML's batch queue is full) but ready: the probe passes, the
            # upstream stays healthy, and only the breaker counts the 503s.
            with pytest.raises(UpstreamError) as err:
                await up.post("/x", deadline=time.monotonic() + 5, json={})
            assert "HTTP 503: process is overloaded" in str(err.value)
            await wait_until(lambda: probes("ok") >= 2, 1.0)  # asked for by the 503, not the 30 s loop
            assert up.healthy and not up.breaker.held
            # Loading (its /readyz says 503 too): unhealthy within one call, not an interval.
            loading = True
            started = time.monotonic()
            with pytest.raises(UpstreamError):
                await up.post("/x", deadline=started + 5, json={})
            found = await wait_until(lambda: not up.healthy, 1.0)
            assert time.monotonic() - started < 0.5 and up.breaker.held, found
            assert "answered HTTP 503" in up.breaker.held
        finally:
            await monitor.stop()
            await p.aclose()
            await runner.cleanup()

    asyncio.run(main())


def test_an_error_status_marks_unhealthy_after_the_threshold_and_a_timeout_with_answers_does_not() -> None:
    service = "health-503"

    async def main() -> None:
        statuses = [200, 503, 503, 200]
        seen: list[int] = []

        async def ready(_request: web.Request) -> web.Response:
            status = statuses[min(len(seen), len(statuses) - 1)]
            seen.append(status)
            return web.Response(status=status, text="model loading")

        port = free_port()
        runner = await serve_on(port, ready=ready)
        s = settings(health_unhealthy_threshold=2)
        p = pool(service, f"http://127.0.0.1:{port}", s)
        up = p.stable
        client = httpx.AsyncClient(trust_env=False)
        probe = UpstreamProbe(up, s, client)
        try:
            healthy = []
            for _ in statuses:
                probe.judge(await probe.probe())
                healthy.append(up.healthy)
            assert healthy == [True, True, False, False]  # two 503s in a row, then one pass of two
            assert "answered HTTP 503" in up.breaker.held
            probe.judge(await probe.probe())
            assert up.healthy
        finally:
            await client.aclose()
            await p.aclose()
            await runner.cleanup()

    async def busy() -> None:
        # /readyz hangs, but real calls keep getting answers: a busy service, not a dead one.
        answer = asyncio.Event()
        readies: list[float] = []

        async def slow_ready(_request: web.Request) -> web.Response:
            readies.append(time.monotonic())
            await answer.wait()
            return web.Response()

        port = free_port()
        runner = await serve_on(port, ready=slow_ready)
        s = settings(health_unhealthy_threshold=1)
        p = pool(service + "-busy", f"http://127.0.0.1:{port}", s)
        up = p.stable
        client = httpx.AsyncClient(trust_env=False)
        probe = UpstreamProbe(up, s, client)

        async def calls() -> None:
            while True:
                await up.post("/moderate", deadline=time.monotonic() + 5, json={})
                await asyncio.sleep(0.02)

        caller = asyncio.create_task(calls())
        try:
            results = [await probe.probe() for _ in range(3)]
            assert [r.outcome for r in results] == ["inconclusive"] * 3
            assert not any(probe.judge(r) for r in results) and up.healthy
            caller.cancel()
            await asyncio.gather(caller, return_exceptions=True)
            result = await probe.probe()  # no answers any more: no answer is a failure
            assert result.outcome == "timeout" and probe.judge(result) and not up.healthy
            assert "no answer for" in result.reason
            # Four rounds, one readiness request: a slow /readyz is not sent another each round.
            assert len(readies) == 1
            answer.set()
            late = await probe.probe()  # the same request's answer, late, is an answer
            assert late.outcome == "ok" and len(readies) == 1
        finally:
            caller.cancel()
            probe.close()
            await client.aclose()
            await p.aclose()
            await runner.cleanup()

    asyncio.run(main())
    asyncio.run(busy())


def test_a_call_cancelled_at_its_deadline_counts_against_the_breaker() -> None:
    async def main() -> None:
        with silent_port() as port:
            up = Upstream("health-cancel", "stable", f"http://127.0.0.1:{port}", settings())
            try:
                # The caller gives up at the same deadline (the orchestrator's wait does): the
                # upstream did not answer in time, which is a failure.
                for n in (1, 2, 3):
                    deadline = time.monotonic() + 0.1
                    with pytest.raises(TimeoutError):
                        async with asyncio.timeout(0.1):
                            await up.post("/x", deadline=deadline, json={})
                    assert up.breaker.consecutive_failures == n
                assert up.breaker.state == BreakerState.OPEN  # threshold 3
            finally:
                await up.aclose()
            # A caller that goes away early says nothing about the upstream.
            early = Upstream("health-cancel", "stable", f"http://127.0.0.1:{port}", settings())
            try:
                with pytest.raises(TimeoutError):
                    async with asyncio.timeout(0.05):
                        await early.post("/x", deadline=time.monotonic() + 5, json={})
                assert early.breaker.consecutive_failures == 0
            finally:
                await early.aclose()

    asyncio.run(main())


def test_a_modality_serves_while_every_upstream_it_needs_is_healthy() -> None:
    async def main() -> None:
        s = settings(health_check_interval_s=0)  # no probes: health set by hand
        url = "http://127.0.0.1:9"
        pools = {
            "speech": pool("speech", url, s, CanaryEndpoint(url=url, weight=10, shadow=True)),
            "vision": pool("vision", url, s, CanaryEndpoint(url=url, weight=10)),
            "text": pool("text", url, s),
        }
        published: list[dict[Modality, bool]] = []

        async def publish(serving: dict[Modality, bool]) -> None:
            published.append(serving)

        monitor = HealthMonitor(pools, s, publish)
        await monitor.start()  # publishes the initial state, starts nothing
        assert published == [{Modality.AUDIO: True, Modality.VISUAL: True, Modality.TEXT: True}]
        canary = pools["speech"].canary
        assert canary is not None
        canary.mark_unhealthy("down")  # a shadow canary serves nobody's verdict
        assert all(monitor.serving().values())
        vision_canary = pools["vision"].canary
        assert vision_canary is not None
        vision_canary.mark_unhealthy("down")  # a weighted canary serves 10 % of them
        assert monitor.serving() == {Modality.AUDIO: True, Modality.VISUAL: False, Modality.TEXT: True}
        pools["text"].stable.mark_unhealthy("down")  # AUDIO needs text for the transcript
        assert monitor.serving() == {Modality.AUDIO: False, Modality.VISUAL: False, Modality.TEXT: False}
        vision_canary.mark_healthy()
        pools["text"].stable.mark_healthy()
        assert all(monitor.serving().values())
        await monitor.stop()
        for p in pools.values():
            await p.aclose()

    asyncio.run(main())


def test_the_probe_path_must_stay_on_the_upstream() -> None:
    for bad in ("readyz", "//evil.example/readyz", "http://evil.example/readyz"):
        with pytest.raises(ValueError, match="path on the upstream URL"):
            OrchestrationSettings(health_check_path=bad)
    assert OrchestrationSettings(health_check_path="/livez").health_check_path == "/livez"
