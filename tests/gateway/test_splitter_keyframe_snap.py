"""FPS sampling with keyframe snapping: a keyframe near a sampling time stands in for it."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import av
import numpy as np
import pytest

from gateway.config import GatewayConfig
from gateway.media.limits import FrameStrategy, MediaLimits, SplitOptions
from gateway.media.splitter import split_media
from modgate.tools.mediagen import Generated, MediaSpec, read_frame_number

pytestmark = pytest.mark.timeout(120)

Make = Callable[[MediaSpec], Generated]
FPS = 25


def reference_frames(path: object, width: int, height: int) -> dict[int, np.ndarray]:
    """Every frame, decoded the plain way, by presentation time in ms."""
    with av.open(str(path)) as container:
        return {
            round(float(frame.pts * frame.time_base) * 1000): frame.reformat(
                width=width, height=height, format="rgb24", interpolation="AREA"
            ).to_ndarray()
            for frame in container.decode(video=0)
        }


def keyframe_times_ms(path: object) -> list[int]:
    with av.open(str(path)) as container:
        return [
            round(float(p.pts * p.time_base) * 1000)
            for p in container.demux(video=0)
            if p.is_keyframe and p.pts is not None
        ]


def clip(make_media: Make, gop: int | None) -> Generated:
    return make_media(
        MediaSpec(width=160, height=120, fps=FPS, duration_s=12.0, gop=gop, audio=None, preset="veryfast")
    )


def test_keyframes_near_sampling_times_stand_in_for_them(make_media: Make) -> None:
    # A keyframe every 1.2 s, one sample every 2 s: every sampling slot holds a keyframe.
    generated = clip(make_media, gop=30)
    exact = split_media(generated.path, SplitOptions(frame_sample_fps=0.5), MediaLimits())
    snapped = split_media(
        generated.path, SplitOptions(frame_sample_fps=0.5, keyframe_snap=0.5), MediaLimits()
    )

    assert exact.frame_timestamps_ms == [0, 2000, 4000, 6000, 8000, 10000]
    assert len(snapped.frames) == len(exact.frames)
    keyframes = set(keyframe_times_ms(generated.path))
    for k, frame in enumerate(snapped.frames):
        # Each kept frame is a keyframe within half an interval (1 s) of its sampling time.
        assert frame.keyframe and frame.timestamp_ms in keyframes
        assert abs(frame.timestamp_ms - k * 2000) <= 1000
    # A few frames per sample (the keyframe, plus what the decoder reads ahead of it to
    # reorder B-frames), far fewer than runs from the previous keyframe.
    assert snapped.counters["video_frames_decoded"] <= 5 * len(snapped.frames)
    assert 2 * snapped.counters["video_frames_decoded"] < exact.counters["video_frames_decoded"]
    # Pixel-identical to the frame shown at that time.
    reference = reference_frames(generated.path, 160, 120)
    for frame in snapped.frames:
        assert np.array_equal(frame.image, reference[frame.timestamp_ms])
        assert read_frame_number(frame.image) == frame.timestamp_ms * FPS // 1000


def test_slots_without_a_keyframe_keep_their_exact_time(make_media: Make) -> None:
    # One keyframe for the whole clip (GOP longer than the clip): nothing to snap to.
    generated = clip(make_media, gop=1000)
    snapped = split_media(
        generated.path, SplitOptions(frame_sample_fps=1.0, keyframe_snap=0.5), MediaLimits()
    )

    assert snapped.frame_timestamps_ms == [k * 1000 for k in range(12)]
    reference = reference_frames(generated.path, 160, 120)
    for frame in snapped.frames:
        assert np.array_equal(frame.image, reference[frame.timestamp_ms])


def test_snapping_never_takes_two_frames_for_one_slot(make_media: Make) -> None:
    # Keyframes every 0.4 s: several per slot; exactly one frame per sampling time is kept.
    generated = clip(make_media, gop=10)
    snapped = split_media(
        generated.path, SplitOptions(frame_sample_fps=1.0, keyframe_snap=0.5), MediaLimits()
    )

    stamps = snapped.frame_timestamps_ms
    assert len(stamps) == 12
    assert all(abs(t - k * 1000) <= 500 for k, t in enumerate(stamps))
    assert all(b > a for a, b in itertools.pairwise(stamps))


def test_gateway_sampling_defaults() -> None:
    config = GatewayConfig(_env_file=None)  # type: ignore[call-arg]
    options = config.split_options()
    assert options.keyframe_snap == 0.5
    # 32 frames unless the request asks for more, up to the hard cap.
    assert (options.max_frames, config.max_frames) == (32, 64)
    assert config.split_options(max_frames=64).max_frames == 64
    assert config.split_options(max_frames=500).max_frames == 64
    assert GatewayConfig(keyframe_snap=0.0).split_options().keyframe_snap == 0.0
    with pytest.raises(ValueError, match="keyframe_snap"):
        SplitOptions(keyframe_snap=0.8)
    keyframes_only = SplitOptions(strategy=FrameStrategy.KEYFRAMES, keyframe_snap=0.5)
    assert keyframes_only.keyframe_snap == 0.5  # accepted, and unused outside FPS
