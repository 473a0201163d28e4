"""Cost admission: work units per request, the budget in flight, per-request maxima, and one
caller's share while others are active (gateway/admission.py, gateway/cost.py)."""

from __future__ import annotations

import asyncio
import time

import grpc
import numpy as np
import pytest

from gateway.admission import Admission
from gateway.cost import CostRates, WorkCost, media_cost, request_cost
from gateway.errors import Overloaded, RequestTooCostly, grpc_status
from gateway.media.types import AudioTrack, MediaInfo, SampledFrame, SplitMedia, SubtitleCue
from gateway.server import caller_key
from gateway.upstreams.config import OrchestrationSettings
from modgate.v1 import moderation_pb2 as pb


def test_a_request_is_priced_by_its_text_frames_and_audio() -> None:
    rates = CostRates(chars_per_unit=1000, units_per_frame=1.0, units_per_audio_s=0.5)
    request = pb.ModerateRequest(
        title="t" * 100,
        description="d" * 400,
        hashtags=["ab", "cde"],
        captions=[pb.CaptionCue(text="c" * 495)],
    )
    text_only = request_cost(request, has_media=False, frame_cap=32)
    assert text_only == WorkCost(text_chars=1000)
    assert rates.units(text_only) == pytest.approx(1.0)
    with_media = request_cost(request, has_media=True, frame_cap=32)
    assert with_media.frames == 32 and rates.units(with_media) == pytest.approx(33.0)

    image = np.zeros((8, 8, 3), dtype=np.uint8)
    media = SplitMedia(
        info=MediaInfo(duration_ms=10_000, container="mp4"),
        # Two tracks: each is transcribed, so each one's seconds are charged.
        audio_tracks=(
            AudioTrack(1, np.zeros(16_000 * 6, dtype=np.float32)),
            AudioTrack(2, np.zeros(16_000 * 4, dtype=np.float32)),
        ),
        frames=[SampledFrame(i * 1000, image, False) for i in range(10)],
        subtitles=[SubtitleCue("s" * 1500, 0, 900, 2, "mov_text")],
        metadata={"comment": "m" * 500},
    )
    found = media_cost(media, precharged_frames=32)
    # The split settles the frames (22 fewer than charged), adds subtitle + metadata text and audio.
    assert found == WorkCost(text_chars=2000, frames=-22, audio_s=10.0)
    assert rates.units(found) == pytest.approx(2.0 - 22 + 5.0)
    assert (with_media + found).describe() == "3,000 text characters, 10 frames, 10 s of audio"


def test_over_the_per_request_maximum_is_resource_exhausted_naming_the_limit() -> None:
    adm = Admission(max_inflight=4, max_units=100, max_request_units=40, max_request_text_units=10)
    with pytest.raises(RequestTooCostly) as text_error:
        adm.check_request(12, 12, "12,000 text characters")
    code, message, _ = grpc_status(text_error.value)
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "MODGATE_GATEWAY_MAX_REQUEST_TEXT_UNITS" in message and "12,000 text characters" in message
    assert text_error.value.details["limit"] == "max_request_text_units"
    with pytest.raises(RequestTooCostly, match="MODGATE_GATEWAY_MAX_REQUEST_UNITS"):
        adm.check_request(41, 1, "1,000 text characters, 40 frames")
    adm.check_request(40, 10, "exactly at both maxima")  # at the limits is fine


def test_the_units_budget_admits_what_fits_and_refuses_the_rest() -> None:
    async def main() -> None:
        adm = Admission(max_inflight=8, max_units=10, max_request_units=10)
        first = await adm.acquire(caller="a", units=6)
        second = await adm.acquire(caller="a", units=4)
        assert adm.units_inflight == pytest.approx(10)
        with pytest.raises(Overloaded) as refused:
            await adm.acquire(caller="a", units=1)
        assert "work units are in flight" in str(refused.value)
        assert refused.value.details["limit"] == "max_inflight_units"
        adm.release(first)
        third = await adm.acquire(caller="a", units=5)
        for ticket in (second, third):
            adm.release(ticket)
        assert (adm.inflight, adm.units_inflight) == (0, 0)

    asyncio.run(main())


def test_units_charged_after_the_split_count_and_may_exceed_the_maximum_only_as_an_error() -> None:
    async def main() -> None:
        adm = Admission(max_inflight=8, max_units=20, max_request_units=10, max_request_text_units=5)
        ticket = await adm.acquire(caller="a", units=3, text_units=1)
        ticket.charge(4, 2, "what the split found")  # over-commits: never waits, counts from now on
        assert adm.units_inflight == pytest.approx(7)
        with pytest.raises(RequestTooCostly, match="MAX_REQUEST_TEXT_UNITS"):
            ticket.charge(1, 3, "3 more units of subtitles")
        ticket.charge(-2, 0, "fewer frames than the cap")
        assert adm.units_inflight == pytest.approx(5)
        adm.release(ticket)
        assert adm.units_inflight == 0

    asyncio.run(main())


def test_one_caller_cannot_take_every_slot_while_others_are_active() -> None:
    async def main() -> None:
        adm = Admission(max_inflight=4, max_units=100, max_request_units=60, caller_share=0.5)
        # Alone, a caller may use everything.
        alone = [await adm.acquire(caller="burst", units=1) for _ in range(4)]
        for ticket in alone:
            adm.release(ticket)
        # Another caller was active a moment ago: the burst caller holds at most half.
        other = await adm.acquire(caller="other", units=1)
        adm.release(other)
        held = [await adm.acquire(caller="burst", units=1) for _ in range(2)]
        with pytest.raises(Overloaded) as refused:
            await adm.acquire(caller="burst", units=1)
        assert refused.value.details["limit"] == "caller_share"
        assert "share (50%" in str(refused.value)
        # The other caller still gets in, at once.
        started = time.monotonic()
        other = await adm.acquire(caller="other", units=1)
        assert time.monotonic() - started < 0.05
        for ticket in (*held, other):
            adm.release(ticket)

    asyncio.run(main())


def test_one_caller_cannot_take_every_unit_but_may_always_run_one_request() -> None:
    async def main() -> None:
        adm = Admission(max_inflight=8, max_units=100, max_request_units=80, caller_share=0.5)
        adm.release(await adm.acquire(caller="other", units=1))  # "other" is active
        big = await adm.acquire(caller="burst", units=80)  # more than its share: it held nothing
        with pytest.raises(Overloaded, match="share"):
            await adm.acquire(caller="burst", units=1)
        small = await adm.acquire(caller="other", units=15)
        adm.release(big)
        adm.release(small)

    asyncio.run(main())


def test_an_idle_caller_stops_counting_after_the_idle_window() -> None:
    async def main() -> None:
        adm = Admission(max_inflight=2, caller_share=0.5, caller_idle_s=0.05)
        adm.release(await adm.acquire(caller="other"))
        await asyncio.sleep(0.1)
        both = [await adm.acquire(caller="burst") for _ in range(2)]  # "other" went idle
        for ticket in both:
            adm.release(ticket)

    asyncio.run(main())


def test_a_waiter_that_does_not_fit_does_not_block_those_behind_it() -> None:
    async def main() -> None:
        adm = Admission(
            max_inflight=4, max_queued=4, queue_timeout_ms=2000, max_units=10, max_request_units=10
        )
        holder = await adm.acquire(caller="a", units=8)
        big = asyncio.create_task(adm.acquire(caller="b", units=5))  # waits for units
        await asyncio.sleep(0.01)
        small = await adm.acquire(caller="c", units=1)  # fits now: admitted past the big one
        adm.release(holder)
        big_ticket = await asyncio.wait_for(big, 1)  # admitted as soon as the units are back
        for ticket in (small, big_ticket):
            adm.release(ticket)
        assert (adm.inflight, adm.queued, adm.units_inflight) == (0, 0, 0)

    asyncio.run(main())


def test_the_settings_refuse_a_maximum_over_the_budget() -> None:
    with pytest.raises(ValueError, match="could never be admitted"):
        OrchestrationSettings(max_request_units=700, max_inflight_units=600)


@pytest.mark.parametrize(
    ("peer", "key"),
    [
        ("ipv4:10.0.0.5:41234", "peer:10.0.0.5"),
        ("ipv6:[::1]:5555", "peer:::1"),
        ("unix:/tmp/sock", "peer:unix:/tmp/sock"),
        ("", "peer:unknown"),
    ],
)
def test_an_unauthenticated_caller_is_its_peer_host(peer: str, key: str) -> None:
    assert caller_key(None, peer) == key
