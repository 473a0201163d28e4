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
    """A sentence spoken by espeak-ng starting at start_s (`voice`: an espeak-ng voice, "es",
    "pt-br", "fr"...; empty: English)."""

    start_s: float
    text: str
    voice: str = ""


@dataclass(frozen=True)
class AudioTrackSpec:
    """An audio track besides the main one (MediaSpec.audio): what it sounds like, its
    language tag and whether the container marks it default."""

    audio: AudioKind = "silence"
    speech: tuple[Speech, ...] = ()
    language: str = ""
    default: bool = False

    def __post_init__(self) -> None:
        if self.speech and self.audio != "speech":
            object.__setattr__(self, "audio", "speech")


@dataclass(frozen=True)
class VideoStreamSpec:
    """A video stream besides the main one: the same picture (frame numbers, moving box) at
    its own size, over `scene_changes_s` of its own."""

    width: int = 160
    height: int = 120
    scene_changes_s: tuple[float, ...] = ()
    default: bool = False


@dataclass(frozen=True)
class TextOverlay:
    """Text burned into the picture from start_s to end_s (modgate.tools.mediagen.overlay):
    centred at `center` (fractions of width, height), `size_px` high at the video's size."""

    start_s: float
    end_s: float
    text: str
    size_px: int = 40
    center: tuple[float, float] = (0.5, 0.8)
    outline: bool = True


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
    # The main audio track's language tag ("eng") and default disposition (None: the muxer's).
    audio_language: str = ""
    audio_default: bool | None = None
    # More audio tracks and video streams, after the main ones (stream indices follow: main
    # video, main audio, then these, then subtitles).
    more_audio: tuple[AudioTrackSpec, ...] = ()
    more_video: tuple[VideoStreamSpec, ...] = ()
    # A cover-art picture (an attached-picture video stream: a PNG), as music videos carry.
    cover_art: bool = False
    # On-screen text, as editors burn captions and offers into the video.
    overlays: tuple[TextOverlay, ...] = ()

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
    # The same for each of spec.more_audio, in order.
    more_speech_spans: tuple[tuple[tuple[float, float, str], ...], ...] = field(default=())

    @property
    def data(self) -> bytes:
        return self.path.read_bytes()
