"""Active health checks: every upstream's readiness endpoint probed in the background.

A model service whose BentoML worker died still accepts connections (its supervisor holds the
listening socket and respawns the worker, which then loads its model for tens of seconds), so
calls to it hang until their deadline and a passive breaker learns nothing. Each upstream
(stable and canary of every service) therefore gets one probe loop: a round every
health_check_interval_s waits up to health_check_timeout_s for an answer to GET <url><path>,
on a client of its own (never queued behind the upstream's busy call pool, never traced) and
only ever to the configured URL.

  refused connection                  -> unhealthy at once (nobody listens)
  no answer, error status, other error -> unhealthy after health_unhealthy_threshold rounds in
                                          a row; a failed round is confirmed by the next one at
                                          once, not an interval later
  2xx                                 -> healthy after health_healthy_threshold rounds in a row,
                                          a passing round of an unhealthy upstream confirmed
                                          the same way
A round without an answer is inconclusive, counting neither way, when a real call to the
upstream got an HTTP answer meanwhile (a busy service, not a dead one) or when the gateway
itself was starved (the round overran its timeout twice over).

One readiness request at a time per upstream: a request that outlives its round is the next
round's, until PROBE_GIVE_UP_S. A service that is slow to get ready (vision warms its model up
inside /readyz) is not sent a new request every interval, whose work would pile up.

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
# The least time between two probe rounds of one upstream.
MIN_PROBE_GAP_S = 0.05
# A readiness request is abandoned (and a new one sent) after this long without an answer.
PROBE_GIVE_UP_S = 10.0

OnChange = Callable[[dict[Modality, bool]], Awaitable[None]]


@dataclass(frozen=True)
class ProbeResult:
    outcome: str  # ok | refused | timeout | http_error | error | inconclusive
    reason: str = ""  # what failed, as the breaker and the log say it

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"


class UpstreamProbe:
    """One upstream's probe loop and the thresholds that turn probe rounds into health."""

    def __init__(
        self, upstream: Upstream, settings: OrchestrationSettings, client: httpx.AsyncClient
    ) -> None:
        self.upstream = upstream
        self.settings = settings
        self._client = client
        self._url = upstream.url + settings.health_check_path
        self._passes = 0
        self._failures = 0
        self._request: asyncio.Task[httpx.Response] | None = None  # the readiness GET under way
        self._request_started = 0.0
        self._current: asyncio.Future[None] | None = None
        self._started_at = 0.0
        self._changed: Callable[[], Awaitable[None]] | None = None

    async def probe(self) -> ProbeResult:
        """One round: up to health_check_timeout_s for an answer to the readiness request under
        way, sent now when none is."""
        up, timeout_s = self.upstream, self.settings.health_check_timeout_s
        started = time.monotonic()
        if self._request is None:
            self._request = asyncio.create_task(self._client.get(self._url, timeout=PROBE_GIVE_UP_S))
            self._request_started = started
        request = self._request
        await asyncio.wait({request}, timeout=timeout_s)
        now = time.monotonic()
        if request.done():
            self._request = None
            result = self._answer(request)
            metrics.UPSTREAM_PROBE_SECONDS.labels(up.service, up.variant).observe(now - self._request_started)
        else:
            waited = now - self._request_started
            if up.last_response_at >= started or now - started > 2 * timeout_s:
                result = ProbeResult("inconclusive")
            else:
                result = ProbeResult(
                    "timeout", f"GET {self._url} has had no answer for {waited * 1000:.0f} ms"
                )
            metrics.UPSTREAM_PROBE_SECONDS.labels(up.service, up.variant).observe(now - started)
        metrics.UPSTREAM_PROBES.labels(up.service, up.variant, result.outcome).inc()
        return result

    def _answer(self, request: asyncio.Task[httpx.Response]) -> ProbeResult:
        """What a finished readiness request says."""
        exc = None if request.cancelled() else request.exception()
        if request.cancelled() or exc is not None:
            if isinstance(exc, httpx.ConnectError):
                return ProbeResult(
                    "refused", f"cannot connect to {self.upstream.url} ({str(exc) or 'refused'})"
                )
            if isinstance(exc, httpx.TimeoutException):
                return ProbeResult("timeout", f"GET {self._url} got no answer in {PROBE_GIVE_UP_S:.0f} s")
            name = "cancelled" if exc is None else f"{type(exc).__name__}: {exc}"
            return ProbeResult("error", f"GET {self._url} failed: {name}")
        status = request.result().status_code
        if 200 <= status < 300:
            return ProbeResult("ok")
        return ProbeResult("http_error", f"GET {self._url} answered HTTP {status}")

    def close(self) -> None:
        """Abandon the readiness request under way (the gateway stops)."""
        if self._request is not None:
            self._request.cancel()
            self._request = None

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
    def suspect(self) -> bool:
        """The last rounds disagree with the upstream's health, not yet enough to change it."""
        up = self.upstream
        return (up.healthy and self._failures > 0) or (not up.healthy and self._passes > 0)

    @property
    def current(self) -> asyncio.Future[None] | None:
        """The probe under way or last done."""
        return self._current

    def check_now(self) -> asyncio.Future[None]:
        """Probe and judge now, or join the probe under way: however many calls ask, one upstream
        sees at most one probe at a time. A probe that has finished never answers a later ask
        (the caller has news it did not see, e.g. a connection lost just after it passed); one
        asked for within MIN_PROBE_GAP_S of the last start waits out the gap, so a storm of
        failing calls probes at most every MIN_PROBE_GAP_S."""
        if self._current is None or self._current.done():
            delay = max(0.0, self._started_at + MIN_PROBE_GAP_S - time.monotonic())
            self._started_at = time.monotonic() + delay
            self._current = asyncio.ensure_future(self._check(delay))
        return self._current

    async def _check(self, delay: float = 0.0) -> None:
        """Never raises (but cancellation): callers only wait for it to be done."""
        try:
            if delay:
                await asyncio.sleep(delay)
            changed = self.judge(await self.probe())
            # A round that disagrees with the upstream's health (a healthy one failed, an
            # unhealthy one passed) is confirmed at once, whoever asked for it (the loop, or a
            # call that lost its connection): the threshold's rounds decide without waiting an
            # interval each, so an outage is failed fast and a recovered service serves at once.
            s = self.settings
            for _ in range(max(s.health_unhealthy_threshold, s.health_healthy_threshold) - 1):
                if not self.suspect:
                    break
                await asyncio.sleep(MIN_PROBE_GAP_S)
                changed = self.judge(await self.probe()) or changed
            if changed and self._changed is not None:
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
                # Still suspect (a confirming round was inconclusive): again at once.
                pause = 0.0 if self.suspect else interval - (time.monotonic() - started)
                await asyncio.sleep(max(MIN_PROBE_GAP_S, pause))
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
        for probe in probes:
            probe.close()
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
