"""Malformed media and limit violations: each yields its documented typed error, never a hang."""

from __future__ import annotations

import asyncio
import pickle
from collections.abc import Callable
from pathlib import Path

import grpc
import numpy as np
import pytest

from gateway import errors
from gateway.media.limits import MediaLimits, SplitOptions
from gateway.media.splitter import split_media
from gateway.media.worker import SplitWorkers
from modgate.tools.mediagen import (
    ZERO_BYTES,
    Cue,
    Generated,
    MediaSpec,
    espeak,
    random_bytes,
    save,
    truncated,
)

pytestmark = pytest.mark.timeout(60)

Make = Callable[[MediaSpec], Generated]
INVALID = grpc.StatusCode.INVALID_ARGUMENT
EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED


def wav_bytes(tmp_path: Path) -> bytes:
    import wave

    pcm = (espeak("not a video") * 32767).astype(np.int16)
    with wave.open(str(tmp_path / "speech.wav"), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(48_000)
        wav.writeframes(pcm.tobytes())
    return (tmp_path / "speech.wav").read_bytes()


@pytest.mark.parametrize(
    ("variant", "error"),
    [
        ("zero_bytes", errors.EmptyMedia),
        ("random_bytes", errors.UnsupportedMedia),
        ("truncated_mp4", errors.UndecodableMedia),
        ("truncated_mkv", errors.TruncatedMedia),
        ("wav_named_mp4", errors.UnsupportedMedia),
        ("header_only_mp4", errors.UndecodableMedia),
        ("only_broken_stream", errors.NoUsableStream),
    ],
)
def test_malformed_media_raises_its_typed_error(
    make_media: Make, tmp_path: Path, variant: str, error: type[errors.GatewayError]
) -> None:
    mp4 = make_media(MediaSpec()).data
    mkv = make_media(MediaSpec(container="mkv", subtitles=(Cue(0, 500, "x"),))).data
    data = {
        "zero_bytes": lambda: ZERO_BYTES,
        "random_bytes": lambda: random_bytes(),
        "truncated_mp4": lambda: truncated(mp4),
        "truncated_mkv": lambda: truncated(mkv, 0.4),
        "wav_named_mp4": lambda: wav_bytes(tmp_path),
        "header_only_mp4": lambda: mp4[:64],
        "only_broken_stream": lambda: (
            make_media(MediaSpec(container="mkv", video=False, audio=None, broken_video_stream=True)).data
        ),
    }[variant]()
    path = save(data, tmp_path / "upload.mp4")  # the wrong extension for most of them

    for source in (data, path):
        with pytest.raises(error) as caught:
            split_media(source, SplitOptions(), MediaLimits())
        assert caught.value.code == INVALID
        assert caught.value.message  # says what happened and what to do


@pytest.mark.parametrize("fraction", [0.3, 0.6])
def test_truncated_faststart_mp4_is_refused(make_media: Make, fraction: float) -> None:
    # The index up front still opens: the missing tail is caught by its declared duration.
    clip = make_media(MediaSpec(faststart=True))
    assert clip.data[4:8] == b"ftyp" and b"moov" in clip.data[:64]
    with pytest.raises(errors.TruncatedMedia, match="upload the complete file"):
        split_media(truncated(clip.data, fraction), SplitOptions(), MediaLimits())


def test_skipped_longer_video_is_not_mistaken_for_truncation(make_media: Make) -> None:
    clip = make_media(MediaSpec(container="mkv", duration_s=6.0, audio_duration_s=2.0))
    media = split_media(clip.path, SplitOptions(video=False), MediaLimits())
    assert media.info.has_video and media.frames == []
    assert abs(media.audio_duration_s - 2.0) <= 0.050


@pytest.mark.parametrize("container", ["mkv", "webm"])
def test_a_late_subtitle_cue_is_not_mistaken_for_truncation(
    make_media: Make, tmp_path: Path, container: str
) -> None:
    # Issue 21 item 7: the container's duration (401 s) is the cue's end, not the 2 s of audio
    # and video. The cue is kept (a player's timeline reaches it); frames span the 2 s.
    clip = make_media(
        MediaSpec(container=container, duration_s=2.0, subtitles=(Cue(400_000, 401_000, "late cue"),))  # type: ignore[arg-type]
    )
    # The gateway's audio-first split reads the video part without decoding the subtitles.
    video_part = split_media(clip.path, SplitOptions(audio=False, subtitles=False), MediaLimits())
    assert video_part.frame_timestamps_ms == [0, 1000]

    media = split_media(clip.path, SplitOptions(), MediaLimits())
    assert [(c.start_ms, c.end_ms, c.text) for c in media.subtitles] == [(400_000, 401_000, "late cue")]
    assert media.frame_timestamps_ms == [0, 1000]
    assert media.info.effective_fps == 1.0 and media.info.duration_ms == 401_000
    assert abs(media.audio_duration_s - clip.audio_duration_s) <= 0.050

    async def audio_first() -> object:
        return await SplitWorkers(0).split_audio_first(
            clip.path, SplitOptions(), MediaLimits(), on_audio=lambda part: None
        )

    merged = asyncio.run(audio_first())
    assert merged.subtitles == media.subtitles and merged.frame_timestamps_ms == [0, 1000]  # type: ignore[attr-defined]

    # An interrupted upload of the same file is still refused, judged on its audio/video data.
    path = save(truncated(clip.data, 0.4), tmp_path / f"cut.{container}")
    for options in (SplitOptions(), SplitOptions(audio=False, subtitles=False)):
        with pytest.raises(errors.TruncatedMedia, match=r"audio/video streams declare 2\.0 s"):
            split_media(path, options, MediaLimits())
    # The cue still counts against the duration limit: the timeline is 401 s long.
    with pytest.raises(errors.MediaTooLong):
        split_media(clip.path, SplitOptions(), MediaLimits(max_duration_s=300.0))


def test_wrong_extension_is_ignored_for_a_valid_file(make_media: Make, tmp_path: Path) -> None:
    webm = make_media(MediaSpec(container="webm"))
    path = save(webm.data, tmp_path / "actually-webm.mp4")

    media = split_media(path, SplitOptions(), MediaLimits())
    assert media.info.container == "webm"
    assert media.info.has_video and media.info.has_audio


@pytest.mark.parametrize(
    ("limits", "error", "limit_name"),
    [
        (MediaLimits(max_bytes=1000), errors.MediaTooLarge, "bytes"),
        (MediaLimits(max_duration_s=2.0), errors.MediaTooLong, "duration_s"),
        (MediaLimits(max_width=160), errors.ResolutionTooHigh, "resolution"),
        (MediaLimits(max_pixels=320 * 200), errors.ResolutionTooHigh, "resolution"),
        (MediaLimits(max_streams=2), errors.TooManyStreams, "streams"),
        (MediaLimits(max_subtitle_cues=1), errors.TooManySubtitleCues, "subtitle_cues"),
        (MediaLimits(max_subtitle_chars=10), errors.TooManySubtitleCues, "subtitle_cues"),
        (MediaLimits(decode_budget_s=1e-6), errors.DecodeBudgetExceeded, "decode_budget_s"),
    ],
)
def test_limits_raise_resource_exhausted(
    make_media: Make, limits: MediaLimits, error: type[errors.LimitExceeded], limit_name: str
) -> None:
    clip = make_media(MediaSpec(subtitles=(Cue(0, 500, "first cue"), Cue(600, 900, "second cue"))))

    with pytest.raises(error) as caught:
        split_media(clip.path, SplitOptions(), limits)
    assert caught.value.code == EXHAUSTED
    assert caught.value.details["limit"] == limit_name


def test_attachment_streams_do_not_count_against_max_streams(make_media: Make) -> None:
    clip = make_media(
        MediaSpec(container="mkv", subtitle_codec="ass", subtitles=(Cue(0, 500, "x"),), attachments=10)
    )
    media = split_media(clip.path, SplitOptions(), MediaLimits(max_streams=3))
    assert [c.text for c in media.subtitles] == ["x"]
    with pytest.raises(errors.TooManyStreams):
        split_media(clip.path, SplitOptions(), MediaLimits(max_streams=2))


def test_short_caller_deadline_raises_deadline_exceeded(make_media: Make) -> None:
    clip = make_media(MediaSpec())
    with pytest.raises(errors.DeadlineExceeded) as caught:
        split_media(clip.path, SplitOptions(), MediaLimits(), deadline_s=1e-6)
    assert caught.value.code == grpc.StatusCode.DEADLINE_EXCEEDED


def test_errors_survive_pickling_with_details() -> None:
    error = errors.MediaTooLong("too long", limit="duration_s", value=700.0, maximum=600.0)
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is errors.MediaTooLong
    assert (copy.message, copy.details, copy.code) == (error.message, error.details, EXHAUSTED)


def test_grpc_status_maps_every_error_once() -> None:
    assert errors.grpc_status(errors.BadField("policy: unknown", field="policy"))[0] == INVALID
    assert errors.grpc_status(errors.PermissionDenied("no"))[0] == grpc.StatusCode.PERMISSION_DENIED
    code, _, trailers = errors.grpc_status(errors.Overloaded("busy", retry_after_ms=250))
    assert (code, trailers) == (EXHAUSTED, (("retry-after-ms", "250"),))
    code, message, _ = errors.grpc_status(RuntimeError("secret detail"))
    assert code == grpc.StatusCode.INTERNAL and "secret" not in message


def test_corrupted_files_never_crash_or_hang_the_worker(make_media: Make) -> None:
    """Bytes flipped at random places in valid files: each split returns or raises a typed error."""
    sources = [
        make_media(MediaSpec(subtitles=(Cue(0, 900, "x"),))).data,
        make_media(MediaSpec(container="mkv")).data,
    ]
    rng = np.random.default_rng(2024)
    corrupted = []
    for i in range(24):
        data = bytearray(sources[i % 2])
        positions = rng.integers(0, len(data), size=int(rng.integers(1, 64)))
        data_array = np.frombuffer(data, dtype=np.uint8).copy()
        data_array[positions] = rng.integers(0, 256, size=len(positions), dtype=np.uint8)
        corrupted.append(data_array.tobytes())

    async def run_all() -> list[object]:
        workers = SplitWorkers(1)
        await workers.start()
        try:
            outcomes: list[object] = []
            for data in corrupted:
                try:
                    outcomes.append(
                        await workers.split(data, SplitOptions(), MediaLimits(decode_budget_s=10))
                    )
                except errors.GatewayError as exc:
                    outcomes.append(exc)
            return outcomes
        finally:
            await workers.close()

    outcomes = asyncio.run(run_all())
    assert len(outcomes) == len(corrupted)
    for outcome in outcomes:
        if isinstance(outcome, errors.GatewayError):
            assert outcome.code in (INVALID, EXHAUSTED), outcome
