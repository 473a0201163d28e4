"""Multi-stream media: every audio track and video stream is split (up to the limits), and
every stream of the container is reported, with why one was not moderated."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import grpc
import numpy as np
import pytest

from gateway.app import build_gateway
from gateway.config import GatewayConfig
from gateway.errors import TooManyStreams
from gateway.media.limits import MediaLimits, SplitOptions
from gateway.media.splitter import split_media
from gateway.media.types import AUDIO_RATE, SKIPPED, SplitMedia, StreamKind, StreamReport
from gateway.media.worker import SplitWorkers
from modgate.tools.mediagen import (
    AudioTrackSpec,
    Cue,
    Generated,
    MediaSpec,
    Speech,
    VideoStreamSpec,
    read_frame_number,
)
from modgate.v1 import moderation_pb2 as pb
from modgate.v1 import moderation_pb2_grpc as pb_grpc
from tests.gateway.test_split_audio_first import assert_same_media

pytestmark = pytest.mark.timeout(90)

Make = Callable[[MediaSpec], Generated]

# Stream 0 video, 1 audio (default, silent, eng), 2 audio (speech, fra), 3 audio (tone),
# 4 video (160x120), 5 subtitles, 6 cover art (an image attachment).
MULTI = MediaSpec(
    container="mkv",
    duration_s=4.0,
    audio="silence",
    audio_language="eng",
    audio_default=True,
    more_audio=(
        AudioTrackSpec(speech=(Speech(1.0, "I know where you live"),), language="fra"),
        AudioTrackSpec(audio="tone"),
    ),
    more_video=(VideoStreamSpec(width=160, height=120),),
    subtitles=(Cue(500, 1500, "Hello"),),
    cover_art=True,
    gop=25,
)


def by_index(media: SplitMedia) -> dict[int, StreamReport]:
    return {r.index: r for r in media.info.streams}


def loud_spans_s(samples: np.ndarray) -> tuple[float, float] | None:
    """Where a track is not silent: (first, last) loud sample in seconds."""
    loud = np.flatnonzero(np.abs(samples) > 0.01)
    return None if loud.size == 0 else (loud[0] / AUDIO_RATE, loud[-1] / AUDIO_RATE)


def test_every_audio_track_is_split_with_its_index_language_and_default_flag(make_media: Make) -> None:
    clip = make_media(MULTI)
    media = split_media(clip.path, SplitOptions(), MediaLimits())

    tracks = [(t.stream_index, t.language, t.default, t.codec) for t in media.audio_tracks]
    assert tracks == [(1, "eng", True, "aac"), (2, "fra", False, "aac"), (3, "", False, "aac")]
    silent, speech, tone = media.audio_tracks
    assert media.audio is silent.samples  # the default track is the first, as with one track
    assert loud_spans_s(silent.samples) is None
    [(start_s, end_s, _)] = clip.more_speech_spans[0]
    heard = loud_spans_s(speech.samples)
    assert heard is not None
    # On the media timeline: the speech is where it was placed on its track (espeak-ng's
    # clip ends in silence, so the loud part ends before the span does).
    assert abs(heard[0] - start_s) <= 0.05 and start_s + 0.5 < heard[1] <= end_s + 0.05
    assert loud_spans_s(tone.samples) == pytest.approx((0.0, 4.0), abs=0.05)
    assert all(abs(t.duration_s - 4.0) <= 0.05 for t in media.audio_tracks)
    assert media.info.has_audio and media.info.audio_codec == "aac"


def test_every_video_stream_is_sampled_sharing_the_frame_budget(make_media: Make) -> None:
    clip = make_media(MULTI)
    media = split_media(clip.path, SplitOptions(frame_sample_fps=1.0, max_frames=4), MediaLimits())

    frames = [(f.stream_index, f.timestamp_ms, f.image.shape[:2]) for f in media.frames]
    # 4 frames for the request, 2 per stream: each stream spread over its 4 s.
    assert frames == [
        (0, 0, (240, 320)),
        (0, 2000, (240, 320)),
        (4, 0, (120, 160)),
        (4, 2000, (120, 160)),
    ]
    assert [read_frame_number(f.image) for f in media.frames] == [0, 50, 0, 50]
    reports = by_index(media)
    assert (reports[0].frames_sampled, reports[4].frames_sampled) == (2, 2)
    assert (reports[4].width, reports[4].height) == (160, 120)
    # MediaInfo's size and codec describe the first video stream, as with one stream.
    assert (media.info.width, media.info.height, media.info.frames_sampled) == (320, 240, 4)
    assert media.counters["video_frames_decoded"] > 0


def test_every_stream_is_reported_and_what_was_not_moderated_says_why(make_media: Make) -> None:
    media = split_media(make_media(MULTI).path, SplitOptions(), MediaLimits())

    reports = by_index(media)
    kinds = [(r.index, r.kind, r.moderated) for r in media.info.streams]
    assert kinds == [
        (0, StreamKind.VIDEO, True),
        (1, StreamKind.AUDIO, True),
        (2, StreamKind.AUDIO, True),
        (3, StreamKind.AUDIO, True),
        (4, StreamKind.VIDEO, True),
        (5, StreamKind.SUBTITLE, True),
        (6, StreamKind.VIDEO, False),
    ]
    assert reports[6].reason == "cover art (an attached picture): not sampled"
    assert (reports[1].language, reports[1].default, reports[2].language) == ("eng", True, "fra")
    assert [r.index for r in media.info.not_moderated()] == [6]
    assert not any(r.over_limit for r in media.info.streams)


def test_streams_over_the_limits_are_not_decoded_and_are_reported_as_over_them(make_media: Make) -> None:
    limits = MediaLimits(max_audio_tracks=2, max_video_streams=1)
    media = split_media(make_media(MULTI).path, SplitOptions(), limits)

    assert [t.stream_index for t in media.audio_tracks] == [1, 2]  # the default one first
    assert {f.stream_index for f in media.frames} == {0}
    reports = by_index(media)
    assert not reports[3].moderated and reports[3].over_limit
    assert "over the limit of 2 audio tracks" in reports[3].reason
    assert "MODGATE_GATEWAY_MAX_AUDIO_TRACKS" in reports[3].reason
    assert not reports[4].moderated and reports[4].over_limit
    assert "over the limit of 1 video streams" in reports[4].reason
    assert [r.index for r in media.info.not_moderated()] == [3, 4, 6]
    assert [r.label() for r in media.info.not_moderated()][:1] == ["stream 3 (audio aac)"]


def test_the_default_track_comes_first_wherever_it_is(make_media: Make) -> None:
    spec = MediaSpec(
        container="mkv",
        duration_s=2.0,
        audio="tone",
        audio_default=False,
        more_audio=(AudioTrackSpec(audio="silence", default=True, language="deu"),),
    )
    media = split_media(make_media(spec).path, SplitOptions(), MediaLimits(max_audio_tracks=1))
    assert [(t.stream_index, t.language) for t in media.audio_tracks] == [(2, "deu")]
    assert by_index(media)[1].over_limit


def test_with_reject_extra_streams_media_over_a_limit_is_refused_before_decoding(make_media: Make) -> None:
    path = make_media(MULTI).path
    with pytest.raises(TooManyStreams) as refused:
        split_media(path, SplitOptions(), MediaLimits(max_audio_tracks=2, reject_extra_streams=True))
    assert refused.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert refused.value.details == {"limit": "audio_tracks", "value": 3, "maximum": 2}
    assert "3 audio tracks, over the limit of 2" in refused.value.message
    assert "MODGATE_GATEWAY_MAX_AUDIO_TRACKS" in refused.value.message

    with pytest.raises(TooManyStreams) as refused:
        split_media(path, SplitOptions(), MediaLimits(max_video_streams=1, reject_extra_streams=True))
    assert refused.value.details == {"limit": "video_streams", "value": 2, "maximum": 1}

    # A kind the request skips is not counted against its limit.
    limits = MediaLimits(max_audio_tracks=2, reject_extra_streams=True)
    media = split_media(path, SplitOptions(audio=False), limits)
    assert media.audio_tracks == () and len(media.frames) > 0
    assert {r.reason for r in media.info.streams if r.kind is StreamKind.AUDIO} == {SKIPPED}
    assert media.info.not_moderated()[0].index == 6  # skipped on request is not "not moderated"


def test_the_audio_first_parts_merge_into_what_one_split_gives_for_many_streams(make_media: Make) -> None:
    path = make_media(MULTI).path
    options = SplitOptions(frame_sample_fps=2.0, keyframe_snap=0.5)
    limits = MediaLimits(max_audio_tracks=2)
    handed: list[SplitMedia] = []

    async def scenario() -> SplitMedia:
        pool = SplitWorkers(0)
        return await pool.split_audio_first(path, options, limits, on_audio=handed.append)

    merged = asyncio.run(scenario())
    plain = split_media(path, options, limits)
    assert_same_media(merged, plain)
    assert merged.info.streams == plain.info.streams
    assert [t.stream_index for t in merged.audio_tracks] == [1, 2]
    assert all(
        np.array_equal(a.samples, b.samples)
        for a, b in zip(merged.audio_tracks, plain.audio_tracks, strict=True)
    )
    [part] = handed
    assert [t.stream_index for t in part.audio_tracks] == [1, 2] and part.frames == []


def test_one_track_files_report_their_streams_too(make_media: Make) -> None:
    clip = make_media(MediaSpec(duration_s=2.0, subtitles=(Cue(0, 900, "hi"),)))
    media = split_media(clip.path, SplitOptions(), MediaLimits())
    assert [(r.index, r.kind, r.moderated, r.default) for r in media.info.streams] == [
        (0, StreamKind.VIDEO, True, True),
        (1, StreamKind.AUDIO, True, True),
        (2, StreamKind.SUBTITLE, True, True),
    ]
    assert [t.stream_index for t in media.audio_tracks] == [1]
    assert {f.stream_index for f in media.frames} == {0}
    assert media.info.not_moderated() == []


def test_an_undecodable_second_video_stream_is_reported_not_silently_dropped(make_media: Make) -> None:
    clip = make_media(MediaSpec(container="mkv", broken_video_stream=True))
    media = split_media(clip.path, SplitOptions(), MediaLimits())
    reports = by_index(media)
    assert reports[0].moderated and media.frames
    broken = reports[2]
    assert (broken.kind, broken.moderated, broken.over_limit) == (StreamKind.VIDEO, False, False)
    assert broken.reason.startswith("undecodable: ")
    assert [r.index for r in media.info.not_moderated()] == [2]
    assert any(u.startswith("stream 2 (video vp8)") for u in media.info.undecodable_streams)


def test_attachments_are_reported_as_not_media(make_media: Make) -> None:
    media = split_media(
        make_media(MediaSpec(container="mkv", attachments=1)).path, SplitOptions(), MediaLimits()
    )
    [attachment] = [r for r in media.info.streams if r.kind is StreamKind.ATTACHMENT]
    assert not attachment.moderated and "not media" in attachment.reason
    assert media.info.not_moderated() == []  # not audio or video: nothing a modality could see


def split_only(data: bytes, **config: object) -> pb.Verdict:
    """A verdict of a split_only gateway (no model services: the media facts only)."""

    async def scenario() -> pb.Verdict:
        settings = GatewayConfig(listen="127.0.0.1:0", mode="split_only", split_workers=0, **config)  # type: ignore[arg-type]
        gateway = build_gateway(settings)
        await gateway.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{gateway.port}") as channel:
                return await pb_grpc.ModerationStub(channel).Moderate(
                    pb.ModerateRequest(media=data), timeout=30
                )
        finally:
            await gateway.stop(0)

    return asyncio.run(scenario())


def test_the_verdict_lists_every_stream_and_why_one_was_not_moderated(make_media: Make) -> None:
    verdict = split_only(make_media(MULTI).data, max_audio_tracks=2)
    streams = [(s.index, s.kind, s.moderated, s.over_limit) for s in verdict.media.streams]
    assert streams == [
        (0, pb.STREAM_KIND_VIDEO, True, False),
        (1, pb.STREAM_KIND_AUDIO, True, False),
        (2, pb.STREAM_KIND_AUDIO, True, False),
        (3, pb.STREAM_KIND_AUDIO, False, True),
        (4, pb.STREAM_KIND_VIDEO, True, False),
        (5, pb.STREAM_KIND_SUBTITLE, True, False),
        (6, pb.STREAM_KIND_VIDEO, False, False),
    ]
    by = {s.index: s for s in verdict.media.streams}
    assert (by[1].language, by[1].is_default, by[2].language) == ("eng", True, "fra")
    assert (by[4].width, by[4].height, by[4].frames_sampled) == (160, 120, 4)
    assert by[3].reason.startswith("over the limit of 2 audio tracks")
    assert by[6].reason.startswith("cover art")


def test_with_reject_the_gateway_answers_resource_exhausted(make_media: Make) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        split_only(make_media(MULTI).data, max_audio_tracks=2, streams_over_limit="reject")
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "3 audio tracks, over the limit of 2 (MODGATE_GATEWAY_MAX_AUDIO_TRACKS)" in (
        refused.value.details() or ""
    )
