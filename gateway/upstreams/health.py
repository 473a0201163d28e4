"""Active health checks: every upstream's readiness endpoint probed in the background.

A model service whose BentoML worker died still accepts connections (its supervisor holds the
listening socket and respawns the worker, which then loads its model for tens of seconds), so
calls to it hang until their deadline and a passive breaker learns nothing. Each upstream
(stable and canary of every service) therefore gets one probe loop: GET <url><path> every
health_check_interval_s with health_check_timeout_s, on a client of its own (never queued
behind the upstream's busy call pool, never traced) and only ever to the configured URL.

  refused connection                  -> unhealthy at once (nobody listens)
  timeout, error status, other error  -> unhealthy after health_unhealthy_threshold in a row
  2xx                                 -> healthy after health_healthy_threshold in a row
A timed-out probe while a real call to the upstream got an HTTP answer meanwhile is
inconclusive (a busy service, not a dead one) and counts neither way.

Unhealthy: Upstream.mark_unhealthy (breaker held open, calls in flight failed now). Per
modality, serving means every upstream that serves its traffic is healthy (the stable, and a
canary with a weight that is not shadow-only); AUDIO needs text too, which scores the
transcript. HealthMonitor.serving() says so; on every change on_change gets the new map
(gateway/app.py publishes it as gRPC health names and metrics).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

import httpx

from gateway import metrics
from gateway.upstreams.config import OrchestrationSettings
from gateway.upstreams.http import Upstream
from gateway.upstreams.services import ServicePool
from modgate.policy import Modality

log = logging.getLogger(__name__)

# The services a modality's requests call: AUDIO's transcript is scored by the text service.
MODALITY_SERVICES: dict[Modality, tuple[str, ...]] = {
    Modality.AUDIO: ("speech", "text"),
    Modality.VISUAL: ("vision",),
    Modality.TEXT: ("text",),
}
# The least time between the starts of two scheduled probes of one upstream.
MIN_PROBE_GAP_S = 0.05

OnChange = Callable[[dict[Modality, bool]], Awaitable[None]]


@dataclass(frozen=True)
class ProbeResult:
    outcome: str  # ok | refused | timeout | http_error | error | inconclusive
    reason: str = ""  # what failed, as the breaker and the log say it

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"


class UpstreamProbe:
    """One upstream's probe loop and the thresholds that turn probes into health."""

    def __init__(
        self, upstream: Upstream, settings: OrchestrationSettings, client: httpx.AsyncClient
    ) -> None:
        self.upstream = upstream
        self.settings = settings
        self._client = client
        self._url = upstream.url + settings.health_check_path
        self._passes = 0
        self._failures = 0
        self._current: asyncio.Future[None] | None = None
        self._started_at = 0.0
        self._changed: Callable[[], Awaitable[None]] | None = None

    async def probe(self) -> ProbeResult:
        """One GET of the readiness endpoint, bounded by health_check_timeout_s."""
        up, timeout_s = self.upstream, self.settings.health_check_timeout_s
        started = time.monotonic()
        try:
            async with asyncio.timeout(timeout_s):
                response = await self._client.get(self._url, timeout=timeout_s)
        except (TimeoutError, httpx.TimeoutException):
            if up.last_response_at >= started:
                result = ProbeResult("inconclusive")
            else:
                result = ProbeResult(
                    "timeout", f"GET {self._url} got no answer within {timeout_s * 1000:.0f} ms"
                )
        except httpx.ConnectError as exc:
            result = ProbeResult(
                "refused", f"cannot connect to {up.url} ({str(exc) or 'connection refused'})"
            )
        except httpx.HTTPError as exc:
            result = ProbeResult("error", f"GET {self._url} failed: {type(exc).__name__}: {exc}")
        else:
            status = response.status_code
            ok = 200 <= status < 300
            result = (
                ProbeResult("ok")
                if ok
                else ProbeResult("http_error", f"GET {self._url} answered HTTP {status}")
            )
        metrics.UPSTREAM_PROBE_SECONDS.labels(up.service, up.variant).observe(time.monotonic() - started)
        metrics.UPSTREAM_PROBES.labels(up.service, up.variant, result.outcome).inc()
        return result

    def judge(self, result: ProbeResult) -> bool:
        """Apply one probe's result; True when the upstream's health changed."""
        up = self.upstream
        was = up.healthy
        if result.ok:
            self._failures = 0
            self._passes += 1
            if not up.healthy and self._passes >= self.settings.health_healthy_threshold:
                up.mark_healthy()
        elif result.outcome != "inconclusive":
            self._passes = 0
            self._failures += 1
            definitive = result.outcome == "refused"
            if definitive or self._failures >= self.settings.health_unhealthy_threshold:
                up.mark_unhealthy(result.reason)  # every failure refreshes the reason
        return up.healthy != was

    @property
    def current(self) -> asyncio.Future[None] | None:
        """The probe under way or last done."""
        return self._current

    def check_now(self) -> asyncio.Future[None]:
        """Probe and judge now, or join the probe under way or done less than MIN_PROBE_GAP_S
        ago: however many calls ask, one upstream sees at most one probe at a time."""
        fresh = time.monotonic() - self._started_at < MIN_PROBE_GAP_S
        if self._current is None or (self._current.done() and not fresh):
            self._started_at = time.monotonic()
            self._current = asyncio.ensure_future(self._check())
        return self._current

    async def _check(self) -> None:
        """Never raises (but cancellation): callers only wait for it to be done."""
        try:
            if self.judge(await self.probe()) and self._changed is not None:
                await self._changed()
        except Exception:  # a bug in one probe must not end the health checks or fail a call
            log.exception("health check of %s/%s failed", self.upstream.service, self.upstream.variant)

    async def run(self, changed: Callable[[], Awaitable[None]]) -> None:
        """Probe every interval until cancelled; calls that saw a refused connection may ask for
        a probe in between (Upstream.check_health)."""
        self._changed = changed
        self.upstream.check_health = self.check_now
        interval = self.settings.health_check_interval_s
        try:
            while True:
                started = time.monotonic()
                await asyncio.shield(self.check_now())  # cancelling the loop leaves it to finish
                await asyncio.sleep(max(MIN_PROBE_GAP_S, interval - (time.monotonic() - started)))
        finally:
            self.upstream.check_health = None


def serving_upstreams(pool: ServicePool) -> list[Upstream]:
    """The upstreams whose results requests use: the stable, and a canary that serves a share."""
    canary = pool.config.canary
    serves = pool.canary is not None and canary is not None and canary.weight > 0 and not canary.shadow
    return [pool.stable, pool.canary] if serves and pool.canary is not None else [pool.stable]


class HealthMonitor:
    """The probe loops of every upstream (started and stopped with the gateway) and what they
    mean per modality."""

    def __init__(
        self,
        pools: dict[str, ServicePool],
        settings: OrchestrationSettings,
        on_change: OnChange | None = None,
    ) -> None:
        self.pools = pools
        self.settings = settings
        self.on_change = on_change
        self._client: httpx.AsyncClient | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._probes: list[UpstreamProbe] = []
        self._publish_lock = asyncio.Lock()

    @property
    def enabled(self) -> bool:
        return self.settings.health_check_interval_s > 0

    def upstreams(self) -> Iterable[Upstream]:
        for pool in self.pools.values():
            yield from pool.all()

    def serving(self) -> dict[Modality, bool]:
        """Per modality: is every upstream its requests are served by healthy?"""
        return {
            modality: all(
                up.healthy for s in services if s in self.pools for up in serving_upstreams(self.pools[s])
            )
            for modality, services in MODALITY_SERVICES.items()
        }

    async def start(self) -> None:
        """Publish the current state and start one probe loop per upstream (none when off)."""
        await self._publish()
        if not self.enabled or self._tasks:
            return
        upstreams = list(self.upstreams())
        # One connection per upstream at most; no environment proxy; no tracing.
        self._client = httpx.AsyncClient(
            limits=httpx.Limits(max_connections=len(upstreams), max_keepalive_connections=len(upstreams)),
            trust_env=False,
            follow_redirects=False,
        )
        for up in upstreams:
            probe = UpstreamProbe(up, self.settings, self._client)
            self._probes.append(probe)
            self._tasks.append(
                asyncio.create_task(probe.run(self._publish), name=f"probe {up.service}/{up.variant}")
            )
        log.info(
            "health checks: %d upstreams, GET %s every %.1f s (timeout %.0f ms)",
            len(upstreams),
            self.settings.health_check_path,
            self.settings.health_check_interval_s,
            self.settings.health_check_timeout_s * 1000,
        )

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        # Probes under way end within their timeout; then their client may close.
        probes, self._probes = self._probes, []
        await asyncio.gather(*(p.current for p in probes if p.current is not None), return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _publish(self) -> None:
        async with self._publish_lock:  # one change at a time, in order
            serving = self.serving()
            for modality, ok in serving.items():
                metrics.MODALITY_SERVING.labels(modality.value).set(1 if ok else 0)
            if self.on_change is not None:
                await self.on_change(serving)
