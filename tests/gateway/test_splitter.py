"""The media splitter on generated media: audio, frames, subtitles, metadata, variants."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import pytest

from gateway.media.limits import FrameStrategy, MediaLimits, SplitOptions
from gateway.media.splitter import split_media
from gateway.media.types import AUDIO_RATE
from modgate.tools.mediagen import Cue, Generated, MediaSpec, Speech, read_frame_number

pytestmark = pytest.mark.timeout(60)

Make = Callable[[MediaSpec], Generated]

CUES = (
    Cue(500, 1700, "Hello world"),
    Cue(2000, 3250, "Second line, with a comma"),
    Cue(3300, 3900, "third"),
)
ASS_CUES = (
    Cue(500, 1700, r"{\i1}Styled{\i0} text, with a comma"),
    Cue(2000, 3250, r"two\Nlines"),
)
ASS_TEXTS = ["Styled text, with a comma", "two\nlines"]

SPEECH_CLIP = MediaSpec(
    duration_s=6.0,
    speech=(Speech(0.5, "I know where you live"), Speech(3.5, "see you tomorrow")),
    subtitles=CUES,
    metadata=(("title", "A clip title"), ("comment", "a container comment")),
)


def split(path: Path, **options: object) -> object:
    return split_media(path, SplitOptions(**options), MediaLimits())  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("container", "subtitle_codec", "cues", "texts"),
    [
        ("mp4", None, CUES, [c.text for c in CUES]),
        ("mov", None, CUES, [c.text for c in CUES]),
        ("mkv", None, CUES, [c.text for c in CUES]),
        ("mkv", "ass", ASS_CUES, ASS_TEXTS),
        ("webm", None, CUES, [c.text for c in CUES]),
    ],
)
def test_containers_split_into_audio_frames_and_exact_subtitles(
    make_media: Make, container: str, subtitle_codec: str | None, cues: tuple[Cue, ...], texts: list[str]
) -> None:
    clip = make_media(
        MediaSpec(container=container, subtitle_codec=subtitle_codec, subtitles=cues)  # type: ignore[arg-type]
    )
    media = split_media(clip.path, SplitOptions(frame_sample_fps=1.0), MediaLimits())

    assert media.info.container == container
    assert media.info.has_audio and media.info.has_video
    assert media.info.subtitle_streams == 1
    assert media.info.undecodable_streams == ()
    assert (media.info.width, media.info.height) == (320, 240)
    assert media.audio is not None and media.audio.dtype == np.float32 and media.audio.ndim == 1
    assert abs(media.audio_duration_s - clip.audio_duration_s) <= 0.050
    assert [c.text for c in media.subtitles] == texts
    assert [(c.start_ms, c.end_ms) for c in media.subtitles] == [(c.start_ms, c.end_ms) for c in cues]
    expected_codec = subtitle_codec or {"mp4": "mov_text", "mov": "mov_text", "mkv": "subrip"}.get(
        container, "webvtt"
    )
    assert {c.codec for c in media.subtitles} == {expected_codec}
    assert media.frame_timestamps_ms == [0, 1000, 2000, 3000]
    assert [read_frame_number(f.image) for f in media.frames] == [0, 25, 50, 75]


def test_webm_with_vp8_video(make_media: Make) -> None:
    clip = make_media(MediaSpec(container="webm", video_codec="libvpx"))
    media = split_media(clip.path, SplitOptions(), MediaLimits())

    assert (media.info.container, media.info.video_codec, media.info.audio_codec) == ("webm", "vp8", "opus")
    assert [read_frame_number(f.image) for f in media.frames] == [0, 25, 50, 75]
    assert abs(media.audio_duration_s - clip.audio_duration_s) <= 0.050


def test_speech_audio_is_16k_mono_on_the_media_timeline(make_media: Make) -> None:
    clip = make_media(SPEECH_CLIP)
    media = split_media(clip.path, SplitOptions(), MediaLimits())

    assert media.audio is not None
    assert abs(media.audio_duration_s - clip.audio_duration_s) <= 0.050
    assert float(np.abs(media.audio).max()) <= 1.0
    energy = media.audio.astype(np.float64) ** 2
    in_speech = np.zeros(len(energy), dtype=bool)
    for start_s, end_s, _ in clip.speech_spans:
        in_speech[int((start_s - 0.05) * AUDIO_RATE) : int((end_s + 0.05) * AUDIO_RATE)] = True
    # Where the sentences were placed is where the sound is (the rest is silence).
    assert energy[in_speech].sum() / energy.sum() > 0.99
    for start_s, end_s, _ in clip.speech_spans:
        span = media.audio[int(start_s * AUDIO_RATE) : int(end_s * AUDIO_RATE)]
        assert float(np.sqrt(np.mean(span**2))) > 0.02


def test_container_metadata_and_media_info(make_media: Make) -> None:
    clip = make_media(SPEECH_CLIP)
    media = split_media(clip.path, SplitOptions(), MediaLimits())

    assert media.metadata == {"title": "A clip title", "comment": "a container comment"}
    info = media.info
    assert info.duration_ms == 6000
    assert (info.video_codec, info.audio_codec) == ("h264", "aac")
    assert info.frames_sampled == len(media.frames) == 6
    assert info.effective_fps == 1.0


@pytest.mark.parametrize("fps", [1.0, 2.0, 3.0, 5.0, 10.0])
def test_frame_timestamps_follow_the_requested_rate(make_media: Make, fps: float) -> None:
    clip = make_media(MediaSpec(width=160, height=120, fps=30, duration_s=3.0, audio=None))
    media = split_media(clip.path, SplitOptions(frame_sample_fps=fps, max_frames=64), MediaLimits())

    expected = [k * 1000.0 / fps for k in range(round(3.0 * fps))]
    assert len(media.frames) == len(expected)
    for frame, target_ms in zip(media.frames, expected, strict=True):
        assert abs(frame.timestamp_ms - target_ms) <= 1.0
        # The pixels are the frame shown at that time, not just a label.
        assert read_frame_number(frame.image) == round(target_ms * 30 / 1000)


def test_frame_cap_spreads_frames_over_the_whole_video(make_media: Make) -> None:
    clip = make_media(MediaSpec(duration_s=4.0, audio=None))
    media = split_media(clip.path, SplitOptions(frame_sample_fps=5.0, max_frames=5), MediaLimits())

    assert media.frame_timestamps_ms == [0, 800, 1600, 2400, 3200]
    assert media.info.effective_fps == 1.25


def test_frames_are_downscaled_to_max_side(make_media: Make) -> None:
    clip = make_media(MediaSpec(width=640, height=360, duration_s=1.0, audio=None))
    media = split_media(clip.path, SplitOptions(frame_max_side=336), MediaLimits())

    assert (media.info.width, media.info.height) == (640, 360)
    assert [f.image.shape for f in media.frames] == [(189, 336, 3)]
    assert media.frames[0].image.dtype == np.uint8
    assert read_frame_number(media.frames[0].image) == 0


def test_keyframes_strategy_returns_only_keyframes(make_media: Make) -> None:
    clip = make_media(MediaSpec(duration_s=4.0, gop=25, audio=None))
    media = split_media(
        clip.path, SplitOptions(strategy=FrameStrategy.KEYFRAMES, frame_sample_fps=2.0), MediaLimits()
    )

    assert media.frame_timestamps_ms == [0, 1000, 2000, 3000]
    assert all(f.keyframe for f in media.frames)
    assert [read_frame_number(f.image) for f in media.frames] == [0, 25, 50, 75]


def test_keyframes_strategy_on_vp9_which_ignores_skip_frame(make_media: Make) -> None:
    clip = make_media(MediaSpec(container="webm", duration_s=4.0, gop=50, audio=None))
    media = split_media(clip.path, SplitOptions(strategy=FrameStrategy.KEYFRAMES), MediaLimits())

    assert media.frame_timestamps_ms == [0, 2000]
    assert all(f.keyframe for f in media.frames)


def test_scene_strategy_finds_scene_changes(make_media: Make) -> None:
    clip = make_media(MediaSpec(duration_s=4.0, scene_changes_s=(1.0, 3.0), audio=None))
    media = split_media(clip.path, SplitOptions(strategy=FrameStrategy.SCENE), MediaLimits())

    assert media.frame_timestamps_ms == [0, 1000, 3000]


def test_video_without_audio(make_media: Make) -> None:
    media = split_media(make_media(MediaSpec(audio=None)).path, SplitOptions(), MediaLimits())

    assert media.audio is None
    assert not media.info.has_audio and media.info.has_video
    assert len(media.frames) == 4


@pytest.mark.parametrize("container", ["mp4", "webm"])
def test_audio_only(make_media: Make, container: str) -> None:
    clip = make_media(MediaSpec(container=container, video=False, speech=(Speech(0.5, "hello there"),)))  # type: ignore[arg-type]
    media = split_media(clip.path, SplitOptions(), MediaLimits())

    assert media.frames == []
    assert media.info.has_audio and not media.info.has_video
    assert (media.info.width, media.info.height) == (0, 0)
    assert abs(media.audio_duration_s - clip.audio_duration_s) <= 0.050


@pytest.mark.parametrize("container", ["mp4", "mkv"])
def test_subtitles_only(make_media: Make, container: str) -> None:
    clip = make_media(MediaSpec(container=container, video=False, audio=None, subtitles=CUES))  # type: ignore[arg-type]
    media = split_media(clip.path, SplitOptions(), MediaLimits())

    assert media.audio is None and media.frames == []
    assert not media.info.has_audio and not media.info.has_video
    assert media.info.subtitle_streams == 1
    assert [(c.text, c.start_ms, c.end_ms) for c in media.subtitles] == [
        (c.text, c.start_ms, c.end_ms) for c in CUES
    ]


def test_undecodable_stream_is_reported_not_fatal(make_media: Make) -> None:
    clip = make_media(MediaSpec(container="mkv", video=False, broken_video_stream=True))
    media = split_media(clip.path, SplitOptions(), MediaLimits())

    assert media.info.has_audio and not media.info.has_video
    assert len(media.info.undecodable_streams) == 1
    assert media.info.undecodable_streams[0].startswith("stream 1 (video vp8)")
    assert abs(media.audio_duration_s - clip.audio_duration_s) <= 0.050


def test_skipped_video_is_reported_present_but_not_decoded(make_media: Make) -> None:
    clip = make_media(MediaSpec())
    media = split_media(clip.path, SplitOptions(video=False), MediaLimits())

    assert media.frames == []
    assert media.info.has_video and media.info.frames_sampled == 0
    assert media.audio is not None


def test_bytes_and_path_sources_split_the_same(make_media: Make) -> None:
    clip = make_media(MediaSpec(subtitles=CUES))
    from_path = split_media(clip.path, SplitOptions(), MediaLimits())
    from_bytes = split_media(clip.data, SplitOptions(), MediaLimits())

    assert from_bytes.info == from_path.info
    assert from_bytes.subtitles == from_path.subtitles
    assert from_bytes.audio is not None and from_path.audio is not None
    assert np.array_equal(from_bytes.audio, from_path.audio)


@pytest.mark.parametrize(
    ("container", "fps", "gop", "max_decoded"),
    [
        # A keyframe every 0.4 s, one sample every 2 s: most GOPs are never decoded.
        ("mp4", 0.5, 10, 60),
        ("mov", 0.5, 10, 60),
        # Default GOP, 1 fps: B-frames no sample needs are dropped by the decoder.
        ("mp4", 1.0, None, 140),
    ],
)
def test_decoding_less_keeps_exactly_the_same_frames(
    make_media: Make, container: str, fps: float, gop: int | None, max_decoded: int
) -> None:
    spec = MediaSpec(
        container=container,  # type: ignore[arg-type]
        width=160,
        height=120,
        duration_s=8.0,
        gop=gop,
        audio=None,
        preset="veryfast",  # B-frames, unlike ultrafast
    )
    clip = make_media(spec)
    media = split_media(clip.path, SplitOptions(frame_sample_fps=fps), MediaLimits())

    assert media.frame_timestamps_ms == [round(k * 1000 / fps) for k in range(round(8 * fps))]
    assert media.counters["video_frames_decoded"] <= max_decoded  # of 200
    # Pixel-identical to decoding every frame: skipping never breaks a reference.
    with av.open(str(clip.path)) as container_file:
        reference = {
            round(float(frame.pts * frame.time_base) * 1000): frame.reformat(
                width=160, height=120, format="rgb24", interpolation="AREA"
            ).to_ndarray()
            for frame in container_file.decode(video=0)
        }
    for frame in media.frames:
        assert np.array_equal(frame.image, reference[frame.timestamp_ms])
        assert read_frame_number(frame.image) == frame.timestamp_ms * 25 // 1000
