"""What to generate: a container's streams, picture, audio, subtitles, metadata; and the result."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

Container = Literal["mp4", "mov", "mkv", "webm"]
AudioKind = Literal["tone", "speech", "silence"]

AUDIO_RATE = 48_000  # what AAC and Opus are encoded at


@dataclass(frozen=True)
class Cue:
    """A subtitle cue. `text` may carry ASS markup ({\\i1}, \\N) for the ass codec."""

    start_ms: int
    end_ms: int
    text: str


@dataclass(frozen=True)
class Speech:
    """A sentence spoken by espeak-ng starting at start_s."""

    start_s: float
    text: str


@dataclass(frozen=True)
class MediaSpec:
    container: Container = "mp4"
    width: int = 320
    height: int = 240
    fps: int = 25
    duration_s: float = 4.0
    video: bool = True
    audio: AudioKind | None = "tone"
    speech: tuple[Speech, ...] = ()
    subtitles: tuple[Cue, ...] = ()
    subtitle_codec: str | None = None  # default: mov_text (mp4/mov), subrip (mkv), webvtt (webm)
    metadata: tuple[tuple[str, str], ...] = ()
    gop: int | None = None  # keyframe interval in frames (None: the encoder's default)
    scene_changes_s: tuple[float, ...] = ()
    # Add a second video stream whose packets are garbage (decoding it fails); mkv only.
    broken_video_stream: bool = False
    preset: str = "ultrafast"
    # A noise texture panning across the background: encodes and decodes like camera footage
    # (the flat default compresses unrealistically well); for benchmarks.
    textured: bool = False
    # Font-like attachment streams (mkv), as anime releases carry for their ASS subtitles.
    attachments: int = 0
    # Audio shorter than the video (None: as long as the video).
    audio_duration_s: float | None = None
    # mp4/mov: index (moov) before the data, as streaming-friendly files have it.
    faststart: bool = False
    # Video encoder (default: libx264; libvpx-vp9 in webm). E.g. "libvpx" for VP8.
    video_codec: str | None = None

    def __post_init__(self) -> None:
        if self.speech and self.audio != "speech":
            object.__setattr__(self, "audio", "speech")


@dataclass(frozen=True)
class Generated:
    path: Path
    spec: MediaSpec
    audio_duration_s: float  # length of the audio track as written (0 without audio)
    # (start_s, end_s, text) of each spoken sentence, as placed in the audio.
    speech_spans: tuple[tuple[float, float, str], ...] = field(default=())

    @property
    def data(self) -> bytes:
        return self.path.read_bytes()
