"""Circuit breaker per upstream: stop calling a service that keeps failing, probe it later.

closed --(failure_threshold consecutive failures)--> open --(reset_timeout)--> half-open
half-open --(a trial call succeeds)--> closed;  half-open --(a trial call fails)--> open
While open, calls fail at once instead of spending the caller's deadline on a dead service.

The health checker (gateway/upstreams/health.py) may also hold the breaker open: while its
readiness probe fails, the breaker stays open whatever the reset timeout and whatever a call
that was already in flight reports; release_hold() closes it once the probes pass again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import StrEnum


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


BREAKER_STATE_VALUE = {BreakerState.CLOSED: 0, BreakerState.HALF_OPEN: 1, BreakerState.OPEN: 2}


class CircuitBreaker:
    def __init__(
        self,
        name: str,
        *,
        failure_threshold: int = 5,
        reset_timeout_s: float = 5.0,
        half_open_max_calls: int = 1,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[str, BreakerState], None] | None = None,
    ) -> None:
        self.name = name
        self.failure_threshold = failure_threshold
        self.reset_timeout_s = reset_timeout_s
        self.half_open_max_calls = half_open_max_calls
        self._clock = clock
        self._on_change = on_change
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._trials = 0  # trial calls in flight while half-open
        self._hold = ""  # why the health checker holds the breaker open ("" when it does not)
        self.last_error = ""

    @property
    def state(self) -> BreakerState:
        # Open turns half-open by itself once the reset timeout has passed, unless held open.
        if (
            self._state == BreakerState.OPEN
            and not self._hold
            and self._clock() - self._opened_at >= self.reset_timeout_s
        ):
            self._set(BreakerState.HALF_OPEN)
        return self._state

    @property
    def held(self) -> str:
        """Why the breaker is held open by the health checker; empty when it is not."""
        return self._hold

    @property
    def consecutive_failures(self) -> int:
        return self._failures

    def retry_in_s(self) -> float:
        if self.state != BreakerState.OPEN or self._hold:
            return 0.0
        return max(0.0, self.reset_timeout_s - (self._clock() - self._opened_at))

    def acquire(self) -> bool:
        """May a call go out now? In half-open only a limited number of trial calls may."""
        state = self.state
        if state == BreakerState.CLOSED:
            return True
        if state == BreakerState.HALF_OPEN and self._trials < self.half_open_max_calls:
            self._trials += 1
            return True
        return False

    def release(self) -> None:
        """A call that was let through ended without a verdict on the upstream (e.g. cancelled)."""
        if self._state == BreakerState.HALF_OPEN and self._trials > 0:
            self._trials -= 1

    def record_success(self) -> None:
        self._failures = 0
        if self._hold:  # a call that was in flight when the probe failed does not overrule it
            return
        self.last_error = ""
        if self._state != BreakerState.CLOSED:
            self._trials = 0
            self._set(BreakerState.CLOSED)

    def record_failure(self, error: str = "") -> None:
        self._failures += 1
        if self._hold:  # already open, and the probe's reason is the one to report
            return
        self.last_error = error
        if self._state == BreakerState.HALF_OPEN or (
            self._state == BreakerState.CLOSED and self._failures >= self.failure_threshold
        ):
            self._trials = 0
            self._opened_at = self._clock()
            self._set(BreakerState.OPEN)

    def hold_open(self, reason: str) -> None:
        """Open now and stay open until release_hold(): the upstream failed its readiness probe."""
        self._hold = reason or "unhealthy"
        self.last_error = self._hold
        self._trials = 0
        self._opened_at = self._clock()
        self._set(BreakerState.OPEN)

    def release_hold(self) -> None:
        """The readiness probes pass again: closed, with a clean failure count."""
        if not self._hold:
            return
        self._hold = ""
        self._failures = 0
        self._trials = 0
        self.last_error = ""
        self._set(BreakerState.CLOSED)

    def _set(self, state: BreakerState) -> None:
        if state != self._state:
            self._state = state
            if self._on_change is not None:
                self._on_change(self.name, state)
