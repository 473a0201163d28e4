"""One upstream (a service variant at a URL): pooled async HTTP, deadline, retries, breaker.

Every call gets the time left until the request's deadline as its total timeout, so a slow
service costs at most the caller's budget. Each attempt is classified once (classify_*):
OK returns the response, FATAL fails the call, TRANSIENT is retried with jittered backoff
only while the budget allows another attempt; Upstream._post records every attempt's
outcome on the breaker and the call metrics in one place.

The health checker (gateway/upstreams/health.py) marks an upstream unhealthy when its readiness
probe fails: its breaker is held open, so new calls fail at once, and the attempts in flight
are failed now instead of at their deadline (mark_unhealthy). A lost connection or a 502/503/504
asks for a probe at once (check_health), and a refused connection waits for it before any retry,
so a service nobody listens on, or one that says it is not ready, is found out, and its breaker
opened, within milliseconds rather than after failure_threshold calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

import httpx

from gateway import metrics
from gateway.upstreams.breaker import BREAKER_STATE_VALUE, BreakerState, CircuitBreaker
from gateway.upstreams.config import OrchestrationSettings
from gateway.upstreams.retry import RetryPolicy, is_transient_error, is_transient_status
from modgate import telemetry

log = logging.getLogger(__name__)

# Below this much budget another attempt is pointless: it could not finish in time.
MIN_ATTEMPT_S = 0.005


class UpstreamError(Exception):
    """A call that produced no usable result. `kind` names what went wrong for metrics."""

    def __init__(
        self,
        message: str,
        *,
        kind: str,
        service: str,
        variant: str,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.service = service
        self.variant = variant
        self.status = status

    @property
    def timed_out(self) -> bool:
        return self.kind == "timeout"


def _error_detail(response: httpx.Response) -> str:
    text = response.text.strip().replace("\n", " ")
    return text[:300] if text else response.reason_phrase


class AttemptVerdict(Enum):
    OK = "ok"  # a usable response
    TRANSIENT = "transient"  # worth another attempt while the budget allows
    FATAL = "fatal"  # fails the call now


@dataclass(frozen=True)
class Attempt:
    """One attempt, classified once: what it means for the call, the breaker and the metrics."""

    verdict: AttemptVerdict
    label: str  # the modgate_gateway_upstream_calls outcome
    healthy: bool  # for the breaker: the service answered (success) or did not (failure)
    message: str = ""  # what went wrong, as the error and the retry log say it
    kind: str = ""  # the UpstreamError kind when it fails the call
    status: int | None = None
    response: httpx.Response | None = None
    note: str | None = None  # the breaker's last error, when it is not the message
    refused: bool = False  # nobody accepted the connection: the one definitive "not there"

    @property
    def breaker_note(self) -> str:
        return self.message if self.note is None else self.note


def classify_timeout(exc: Exception, remaining: float) -> Attempt:
    if isinstance(exc, httpx.ConnectTimeout):  # never reached the service: retry
        return Attempt(
            AttemptVerdict.TRANSIENT,
            "transient",
            healthy=False,
            message=f"connect timeout: {exc}",
            kind="connect",
        )
    # The service has the request and is slow: another attempt would only spend the budget.
    message = f"no answer within {remaining * 1000:.0f} ms"
    return Attempt(
        AttemptVerdict.FATAL, "timeout", healthy=False, message=message, kind="timeout", note="timeout"
    )


def classify_unhealthy(reason: str) -> Attempt:
    """An attempt in flight when the upstream failed its readiness probe: it will not answer."""
    message = f"failed its readiness probe while the call was in flight ({reason})"
    return Attempt(AttemptVerdict.FATAL, "unhealthy", healthy=False, message=message, kind="unhealthy")


def classify_error(exc: httpx.HTTPError) -> Attempt:
    name = type(exc).__name__
    if is_transient_error(exc):
        message = f"{name}: {str(exc) or 'connection failed'}"
        return Attempt(
            AttemptVerdict.TRANSIENT,
            "transient",
            healthy=False,
            message=message,
            kind="connect",
            refused=isinstance(exc, httpx.ConnectError),
        )
    return Attempt(
        AttemptVerdict.FATAL, "error", healthy=False, message=f"{name}: {exc}", kind="connect", note=name
    )


def classify_response(response: httpx.Response) -> Attempt:
    status = response.status_code
    if status < 400:
        return Attempt(AttemptVerdict.OK, "ok", healthy=True, status=status, response=response)
    message = f"HTTP {status}: {_error_detail(response)}"
    if is_transient_status(status):
        return Attempt(AttemptVerdict.TRANSIENT, "transient", healthy=False, message=message, kind="http_5xx")
    if status >= 500:
        return Attempt(
            AttemptVerdict.FATAL,
            "http_5xx",
            healthy=False,
            message=message,
            kind="http_5xx",
            status=status,
            note=f"HTTP {status}",
        )
    # The service is up and rejected the request: not a health problem.
    return Attempt(
        AttemptVerdict.FATAL, "http_4xx", healthy=True, message=message, kind="http_4xx", status=status
    )


class Upstream:
    def __init__(
        self,
        service: str,
        variant: str,
        url: str,
        settings: OrchestrationSettings,
        *,
        rng: random.Random | None = None,
    ) -> None:
        self.service = service
        self.variant = variant
        self.url = url
        self._settings = settings
        self._retry = RetryPolicy(
            max_attempts=settings.retry_max_attempts,
            base_ms=settings.retry_backoff_base_ms,
            max_ms=settings.retry_backoff_max_ms,
        )
        self._rng = rng or random.Random()
        self.breaker = CircuitBreaker(
            f"{service}/{variant}",
            failure_threshold=settings.breaker_failure_threshold,
            reset_timeout_s=settings.breaker_reset_timeout_s,
            half_open_max_calls=settings.breaker_half_open_max_calls,
            on_change=self._breaker_changed,
        )
        metrics.BREAKER_STATE.labels(service, variant).set(0)
        # Set by the health checker; healthy until a probe says otherwise.
        self.healthy = True
        metrics.UPSTREAM_HEALTHY.labels(service, variant).set(1)
        # Set while the health checker runs: probe now, once for every caller asking meanwhile.
        self.check_health: Callable[[], Awaitable[object]] | None = None
        self.last_response_at = 0.0  # monotonic time of the last HTTP answer, whatever its status
        # The timeout scope of every attempt in flight, and why mark_unhealthy cut one short.
        self._inflight: set[asyncio.Timeout] = set()
        self._cut: dict[asyncio.Timeout, str] = {}
        # One pooled client per upstream: connections are reused across requests.
        self._client = httpx.AsyncClient(
            base_url=url,
            limits=httpx.Limits(
                max_connections=settings.pool_max_connections,
                max_keepalive_connections=settings.pool_max_keepalive,
            ),
            timeout=None,  # every call sets its own, derived from the deadline
            trust_env=False,  # never route service traffic through an env proxy
        )
        # Client span per attempt + W3C traceparent to the service (no-op with tracing off).
        telemetry.instrument_httpx_client(self._client)

    def _breaker_changed(self, name: str, state: BreakerState) -> None:
        metrics.BREAKER_STATE.labels(self.service, self.variant).set(BREAKER_STATE_VALUE[state])
        log.warning("circuit breaker %s is now %s (%s)", name, state.value, self.breaker.last_error)

    async def aclose(self) -> None:
        await self._client.aclose()

    def mark_unhealthy(self, reason: str) -> None:
        """The readiness probe failed: hold the breaker open and fail the attempts in flight now."""
        was_healthy, self.healthy = self.healthy, False
        self.breaker.hold_open(reason)
        metrics.UPSTREAM_HEALTHY.labels(self.service, self.variant).set(0)
        if was_healthy:
            log.warning(
                "upstream %s/%s (%s) is unhealthy: %s; its calls fail at once, %d in flight failed",
                self.service,
                self.variant,
                self.url,
                reason,
                len(self._inflight),
            )
        now = asyncio.get_running_loop().time()
        for scope in list(self._inflight):
            if not scope.expired():
                self._cut[scope] = reason
                scope.reschedule(now)  # the attempt ends with TimeoutError at the next loop turn

    def mark_healthy(self) -> None:
        """The readiness probes pass again: calls go through."""
        if self.healthy:
            return
        self.healthy = True
        self.breaker.release_hold()
        metrics.UPSTREAM_HEALTHY.labels(self.service, self.variant).set(1)
        log.warning("upstream %s/%s (%s) is healthy again", self.service, self.variant, self.url)

    def _fail(self, message: str, kind: str, status: int | None = None) -> UpstreamError:
        metrics.UPSTREAM_ERRORS.labels(self.service, self.variant, kind).inc()
        return UpstreamError(
            f"{self.service} ({self.variant}, {self.url}): {message}",
            kind=kind,
            service=self.service,
            variant=self.variant,
            status=status,
        )

    async def post(self, path: str, *, deadline: float, **kwargs: Any) -> httpx.Response:
        """POST with the remaining budget; returns a 2xx response or raises UpstreamError."""
        started = time.monotonic()
        attempts = [0]
        attributes = {telemetry.Attr.VARIANT: self.variant, "server.address": self.url, "url.path": path}
        with telemetry.span(f"upstream {self.service}", attributes) as span:
            try:
                return await self._post(path, deadline=deadline, attempts=attempts, **kwargs)
            except UpstreamError as exc:
                span.set_attribute(telemetry.Attr.ERROR_TYPE, exc.kind)
                raise
            finally:
                span.set_attribute(telemetry.Attr.RETRIES, max(0, attempts[0] - 1))
                span.set_attribute(telemetry.Attr.BREAKER_STATE, self.breaker.state.value)
                metrics.UPSTREAM_SECONDS.labels(self.service, self.variant).observe(
                    time.monotonic() - started
                )

    async def _post(
        self, path: str, *, deadline: float, attempts: list[int], **kwargs: Any
    ) -> httpx.Response:
        attempt = 0
        while True:
            attempt += 1
            attempts[0] = attempt
            remaining = self._admit(deadline)
            result = await self._attempt(path, remaining, kwargs)
            # The one place an attempt's outcome reaches the breaker and the call metrics.
            if result.healthy:
                self.breaker.record_success()
            else:
                self.breaker.record_failure(result.breaker_note)
            metrics.UPSTREAM_CALLS.labels(self.service, self.variant, result.label).inc()
            if result.refused:
                await self._confirm_refused(deadline)
            if result.verdict is AttemptVerdict.OK:
                assert result.response is not None
                return result.response
            if result.verdict is AttemptVerdict.FATAL:
                raise self._fail(result.message, result.kind, result.status)
            if self.breaker.held:  # the probe found it down meanwhile: no retry can succeed
                raise self._held_open()
            delay = self._retry.backoff_s(attempt, self._rng)
            if attempt >= self._retry.max_attempts or deadline - time.monotonic() < delay + MIN_ATTEMPT_S:
                raise self._fail(f"{result.message} (after {attempt} attempt(s))", result.kind)
            metrics.UPSTREAM_RETRIES.labels(self.service, self.variant).inc()
            log.info(
                "retrying %s/%s in %.0f ms after %s", self.service, self.variant, delay * 1000, result.message
            )
            await asyncio.sleep(delay)

    async def _confirm_refused(self, deadline: float) -> None:
        """Nobody accepted the connection: let the health checker probe before any retry, so a
        service that is gone opens its breaker now (the retry's admission then fails at once)."""
        if self.check_health is None:
            return
        with contextlib.suppress(TimeoutError):
            # Shielded: the probe is shared with other callers and the probe loop. It never
            # raises; at the deadline the call stops waiting for it.
            await asyncio.wait_for(asyncio.shield(self.check_health()), max(0.0, deadline - time.monotonic()))

    def _held_open(self) -> UpstreamError:
        return self._fail(
            f"circuit open: the upstream fails its readiness probe ({self.breaker.held}); "
            "calls fail at once until it passes again",
            "circuit_open",
        )

    def _admit(self, deadline: float) -> float:
        """The budget for one more attempt; refused when none is left or the breaker is open."""
        remaining = deadline - time.monotonic()
        if remaining <= MIN_ATTEMPT_S:
            raise self._fail("no time left before the deadline", "timeout")
        if not self.breaker.acquire():
            if self.breaker.held:
                raise self._held_open()
            raise self._fail(
                f"circuit open after {self.breaker.consecutive_failures} consecutive failures "
                f"(last: {self.breaker.last_error or 'unknown'}); next probe in "
                f"{self.breaker.retry_in_s():.1f} s",
                "circuit_open",
            )
        return remaining

    async def _attempt(self, path: str, remaining: float, kwargs: dict[str, Any]) -> Attempt:
        timeout = httpx.Timeout(remaining, connect=min(self._settings.connect_timeout_s, remaining))
        started = time.monotonic()
        scope = asyncio.timeout(remaining)
        try:
            async with scope:
                self._inflight.add(scope)
                response = await self._client.post(path, timeout=timeout, **kwargs)
        except asyncio.CancelledError:
            if time.monotonic() - started >= remaining - MIN_ATTEMPT_S:
                # Cancelled by a caller whose deadline is this attempt's: the upstream did not
                # answer in time, which the breaker must count (else a hung service never opens it).
                self.breaker.record_failure("timeout")
            else:
                self.breaker.release()  # the caller went away: no verdict on the upstream's health
            raise
        except (TimeoutError, httpx.TimeoutException) as exc:
            reason = self._cut.pop(scope, None)
            return classify_timeout(exc, remaining) if reason is None else classify_unhealthy(reason)
        except httpx.HTTPError as exc:
            if isinstance(exc, httpx.TransportError) and self.check_health is not None:
                self.check_health()  # a lost connection may be a dead worker: probe now, not later
            return classify_error(exc)
        finally:
            self._inflight.discard(scope)
            self._cut.pop(scope, None)
        self.last_response_at = time.monotonic()
        if is_transient_status(response.status_code) and self.check_health is not None:
            # A worker still loading its model says 503 on /readyz too: probe now. An overloaded
            # one (BentoML's "process is overloaded") stays ready, and only the breaker counts it.
            self.check_health()
        return classify_response(response)
