"""Deterministic stable/canary/shadow routing by request id."""

from __future__ import annotations

import pytest

from gateway.upstreams.config import CanaryEndpoint
from gateway.upstreams.routing import Route, bucket, route

IDS = [f"req-{i:05d}" for i in range(2000)]


def test_bucket_is_stable_and_in_range() -> None:
    assert [bucket(i) for i in IDS[:50]] == [bucket(i) for i in IDS[:50]]
    assert all(0 <= bucket(i) < 100 for i in IDS)
    # Known value pins the hash: changing it would silently move every caller to another variant.
    assert [bucket(x) for x in ("req-00000", "a", "b", "hello")] == [4, 50, 46, 42]


def test_canary_share_matches_weight() -> None:
    canary = CanaryEndpoint(url="http://127.0.0.1:1", weight=30)
    served = [route(i, canary).primary for i in IDS]
    share = served.count("canary") / len(served)
    assert 0.27 <= share <= 0.33, share
    # Same ids, same answer.
    assert served == [route(i, canary).primary for i in IDS]


def test_weights_nest_so_raising_the_weight_only_adds_ids() -> None:
    low = CanaryEndpoint(url="http://127.0.0.1:1", weight=10)
    high = CanaryEndpoint(url="http://127.0.0.1:1", weight=40)
    on_low = {i for i in IDS if route(i, low).primary == "canary"}
    on_high = {i for i in IDS if route(i, high).primary == "canary"}
    assert on_low < on_high


def test_edges_and_shadow() -> None:
    assert route("a", None) == Route("stable", False)
    assert all(route(i, CanaryEndpoint(url="http://x", weight=0)).primary == "stable" for i in IDS[:200])
    assert all(route(i, CanaryEndpoint(url="http://x", weight=100)).primary == "canary" for i in IDS[:200])
    shadow = CanaryEndpoint(url="http://x", weight=30, shadow=True)
    routes = [route(i, shadow) for i in IDS]
    assert all(r.primary == "stable" for r in routes)  # shadow never serves
    mirrored = sum(r.shadow for r in routes) / len(routes)
    assert 0.27 <= mirrored <= 0.33


def test_a_pinned_variant_overrides_weight_and_shadow() -> None:
    from gateway.upstreams.config import CanaryEndpoint
    from gateway.upstreams.routing import Route, route

    for canary in (
        CanaryEndpoint(url="http://c", weight=0),
        CanaryEndpoint(url="http://c", weight=100, shadow=True),
    ):
        assert route("any-id", canary, "canary") == Route("canary", False)
        assert route("any-id", canary, "stable") == Route("stable", False)
    # No canary for this service: a pinned canary request is served by stable here.
    assert route("any-id", None, "canary") == Route("stable", False)


def test_an_unknown_variant_is_a_bad_field() -> None:
    from gateway.errors import BadField
    from gateway.validation import _validate_options
    from modgate.v1 import moderation_pb2 as pb

    _validate_options(pb.ModerateOptions(variant="canary"))
    with pytest.raises(BadField, match=r"options\.variant"):
        _validate_options(pb.ModerateOptions(variant="blue"))
