"""Fusion and the verdict with several streams: evidence says which stream, temporal rules hold
within one video stream, and streams no modality saw are in the verdict (coverage.py)."""

from __future__ import annotations

import numpy as np

from gateway.fusion import Fused, FusionInput, fuse
from gateway.media.limits import StreamsOverLimit
from gateway.media.types import AudioTrack, MediaInfo, SplitMedia, StreamKind, StreamReport
from gateway.orchestrator.coverage import not_moderated, with_coverage
from modgate.policy import Modality
from modgate.v1 import moderation_pb2 as pb
from modgate.wire import FrameScore
from tests.gateway.test_fusion import frames, ok, small_policy, text


def test_evidence_names_the_audio_track_and_subtitle_stream_it_came_from() -> None:
    inp = FusionInput(
        policy=small_policy(),
        outcomes=ok(Modality.AUDIO, Modality.TEXT),
        texts=[
            text("transcript-2-0", "I will hurt you", "transcript", {"violence": 0.9}, start=2000, end=3000),
            text("subtitle-0", "I will hurt you", "subtitle", {"violence": 0.7}, start=0, end=900),
            text("title", "I will hurt you", "title", {"violence": 0.6}),
        ],
        item_streams={"transcript-2-0": 2, "subtitle-0": 5},
    )
    evidence = fuse(inp).evidence
    assert [(e.source, e.stream_index) for e in evidence] == [
        (pb.SOURCE_TRANSCRIPT, 2),
        (pb.SOURCE_SUBTITLE, 5),
        (pb.SOURCE_TITLE, -1),
    ]


def on_streams(**series: list[float]) -> FusionInput:
    """VISUAL input with frames of several streams ("s3": stream 3) at the same times, one a
    second; FrameScore.index runs across all of them, as the gateway sends them."""
    scored: list[FrameScore] = []
    streams: list[int] = []
    for name, scores in series.items():
        for frame in frames(scores):
            scored.append(frame.model_copy(update={"index": len(scored)}))
            streams.append(int(name[1:]))
    return FusionInput(
        policy=small_policy(), outcomes=ok(Modality.VISUAL), frames=scored, frame_streams=streams
    )


def test_a_temporal_rule_holds_within_one_video_stream() -> None:
    # violence needs 2 frames: one violent frame in each of two streams at the same moment is
    # not two frames of violence.
    fused = fuse(on_streams(s0=[0.95, 0.0], s3=[0.95, 0.0]))
    assert fused.decision == pb.DECISION_ALLOW
    assert any("temporal rule" in r for r in fused.reasons)

    # Two violent frames in a row on the second stream: that stream's rule is met.
    fused = fuse(on_streams(s0=[0.0, 0.0], s3=[0.95, 0.95]))
    assert fused.decision == pb.DECISION_BLOCK
    assert {(e.frame_index, e.stream_index) for e in fused.evidence} == {(2, 3), (3, 3)}


def test_without_stream_information_frames_count_as_one_stream() -> None:
    fused = fuse(
        FusionInput(policy=small_policy(), outcomes=ok(Modality.VISUAL), frames=frames([0.95, 0.95]))
    )
    assert fused.decision == pb.DECISION_BLOCK
    assert {e.stream_index for e in fused.evidence} == {-1}


def media_with(*reports: StreamReport) -> SplitMedia:
    track = AudioTrack(1, np.zeros(16000, dtype=np.float32))
    return SplitMedia(
        info=MediaInfo(duration_ms=1000, container="mkv", streams=reports), audio_tracks=(track,)
    )


def allow() -> Fused:
    return fuse(FusionInput(policy=small_policy(), outcomes=ok(Modality.AUDIO)))


AUDIO_1 = StreamReport(1, StreamKind.AUDIO, "aac", moderated=True)
OVER = StreamReport(
    2, StreamKind.AUDIO, "aac", "fra", moderated=False, reason="over the limit", over_limit=True
)
COVER = StreamReport(3, StreamKind.VIDEO, "png", reason="cover art (an attached picture): not sampled")


def test_streams_over_a_limit_degrade_the_verdict_and_by_default_make_it_review() -> None:
    fused = with_coverage(allow(), not_moderated(media_with(AUDIO_1, OVER)), StreamsOverLimit.REVIEW)
    assert fused.decision == pb.DECISION_REVIEW and fused.degraded
    assert fused.reasons[-1] == (
        "not moderated, over the stream limits: stream 2 (audio aac, fra): at least REVIEW "
        "(MODGATE_GATEWAY_STREAMS_OVER_LIMIT=review)"
    )

    ignored = with_coverage(allow(), not_moderated(media_with(AUDIO_1, OVER)), StreamsOverLimit.IGNORE)
    assert ignored.decision == pb.DECISION_ALLOW and ignored.degraded
    assert "left out of the decision (MODGATE_GATEWAY_STREAMS_OVER_LIMIT=ignore)" in ignored.reasons[-1]


def test_other_streams_not_looked_at_are_named_without_degrading() -> None:
    fused = with_coverage(allow(), not_moderated(media_with(AUDIO_1, COVER)), StreamsOverLimit.REVIEW)
    assert fused.decision == pb.DECISION_ALLOW and not fused.degraded
    assert (
        fused.reasons[-1]
        == "not moderated: stream 3 (video png): cover art (an attached picture): not sampled"
    )


def test_a_verdict_with_every_stream_moderated_is_left_as_it_is() -> None:
    before = allow()
    assert with_coverage(before, not_moderated(media_with(AUDIO_1)), StreamsOverLimit.REVIEW) is before
    assert with_coverage(before, not_moderated(None), StreamsOverLimit.REVIEW) is before
    # A block stays a block.
    block = fuse(
        FusionInput(
            policy=small_policy(),
            outcomes=ok(Modality.AUDIO),
            texts=[text("transcript-1-0", "I will hurt you", "transcript", {"violence": 0.95})],
        )
    )
    covered = with_coverage(block, not_moderated(media_with(AUDIO_1, OVER)), StreamsOverLimit.REVIEW)
    assert covered.decision == pb.DECISION_BLOCK
