"""Deterministic stable/canary/shadow routing keyed by the request id.

A request id always lands in the same bucket (0-99) — the same id is served by the same
variant on every gateway replica and across restarts — so a caller's retry cannot flip
between models, and a canary share of `weight` % means ids in buckets [0, weight).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from gateway.upstreams.config import CanaryEndpoint


def bucket(request_id: str) -> int:
    digest = hashlib.sha256(request_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % 100


@dataclass(frozen=True)
class Route:
    primary: str  # "stable" | "canary": whose result is used
    shadow: bool  # also send a copy to the canary and only record its result


def route(request_id: str, canary: CanaryEndpoint | None, pinned: str = "") -> Route:
    """The request's route; `pinned` ("stable" | "canary", evaluation callers) overrides the
    weight and shadow settings: canary wherever one is configured, even at weight 0."""
    if pinned:
        return Route("canary" if pinned == "canary" and canary is not None else "stable", False)
    if canary is None or canary.weight <= 0:
        return Route("stable", False)
    chosen = bucket(request_id) < canary.weight
    if canary.shadow:
        return Route("stable", chosen)
    return Route("canary" if chosen else "stable", False)
