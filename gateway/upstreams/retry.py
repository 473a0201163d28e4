"""Which upstream errors are worth retrying, and how long to wait before the next attempt.

Only transient errors are retried: the request never reached the service (connect errors, a
pooled connection the service closed while it restarted) or a proxy/service said "try again"
(502/503/504). Anything else — 4xx, 500, a read timeout — fails at once: retrying would
repeat a bad request or spend the caller's deadline on a service that is already slow.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import httpx

TRANSIENT_STATUS = frozenset({502, 503, 504})
# RemoteProtocolError: the server dropped a kept-alive connection before answering, which is
# what a restarted service looks like to a pooled client; the request was not processed.
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.RemoteProtocolError,
)


def is_transient_status(status: int) -> bool:
    return status in TRANSIENT_STATUS


def is_transient_error(exc: BaseException) -> bool:
    return isinstance(exc, TRANSIENT_ERRORS)


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 3  # total attempts, including the first
    base_ms: int = 50
    max_ms: int = 500

    def backoff_s(self, attempt: int, rng: random.Random | None = None) -> float:
        """Full-jitter exponential backoff before attempt `attempt + 1` (attempt counts from 1)."""
        cap = min(self.max_ms, self.base_ms * (2 ** (attempt - 1)))
        return (rng or random).uniform(0, cap) / 1000.0
