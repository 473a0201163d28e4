"""What the splitter produces from one container."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np

AUDIO_RATE = 16_000  # Hz; what speech recognition expects
# StreamReport.reason of a stream whose modality the request skipped.
SKIPPED = "skipped on request"


@dataclass(frozen=True)
class SampledFrame:
    timestamp_ms: int  # presentation time from the start of the media
    image: np.ndarray  # (height, width, 3) uint8 RGB, already downscaled
    keyframe: bool
    stream_index: int = -1  # the container stream it was sampled from (-1: not known)


@dataclass(frozen=True)
class AudioTrack:
    """One decoded audio stream: 16 kHz mono float32 in [-1, 1] on the media timeline (silence
    before the stream starts), so transcript times line up with frames and other tracks."""

    stream_index: int
    samples: np.ndarray
    codec: str = ""
    language: str = ""  # the container's language tag ("eng", "fra"), empty when none
    default: bool = False  # the container marks it as the one players pick

    @property
    def duration_s(self) -> float:
        return len(self.samples) / AUDIO_RATE


@dataclass(frozen=True)
class SubtitleCue:
    """One cue of an embedded subtitle stream, as plain text (ASS markup removed)."""

    text: str
    start_ms: int
    end_ms: int
    stream_index: int
    codec: str  # mov_text, subrip, webvtt, ass...
    language: str = ""


class StreamKind(StrEnum):
    AUDIO = "audio"
    VIDEO = "video"
    SUBTITLE = "subtitle"
    ATTACHMENT = "attachment"  # fonts and other files carried in mkv
    DATA = "data"  # timecodes, chapters, anything else


@dataclass(frozen=True)
class StreamReport:
    """One stream of the container as the verdict reports it: what it is and whether its
    content was handed to a modality. A stream that was not says why (skipped on request, over
    the audio-track or video-stream limit, no decoder, cover art, not media); `over_limit`
    marks the ones left out only because of a limit, which the verdict flags as degraded."""

    index: int
    kind: StreamKind
    codec: str = ""
    language: str = ""
    default: bool = False
    moderated: bool = False
    reason: str = ""  # why not moderated (empty when moderated)
    over_limit: bool = False
    width: int = 0  # video
    height: int = 0
    frames_sampled: int = 0  # video: frames kept from this stream

    def label(self) -> str:
        """ "stream 2 (audio aac, fra)": how reasons name the stream."""
        extra = f", {self.language}" if self.language else ""
        return f"stream {self.index} ({self.kind.value} {self.codec or 'unknown'}{extra})"


@dataclass(frozen=True)
class MediaInfo:
    duration_ms: int
    container: str  # mp4, mov, webm, mkv
    width: int = 0  # source video size (before downscaling)
    height: int = 0
    has_audio: bool = False
    has_video: bool = False
    subtitle_streams: int = 0
    frames_sampled: int = 0
    # "stream 2 (video h264): why" for streams present but not decodable; reported, not fatal.
    undecodable_streams: tuple[str, ...] = ()
    video_codec: str = ""
    audio_codec: str = ""
    # Sampling rate actually used (below the requested one when max_frames would not cover
    # the whole video at the requested rate).
    effective_fps: float = 0.0
    # Every stream of the container, in container order (see StreamReport).
    streams: tuple[StreamReport, ...] = ()

    def not_moderated(self) -> list[StreamReport]:
        """Audio and video streams whose content no modality saw, other than by request."""
        return [
            s
            for s in self.streams
            if s.kind in (StreamKind.AUDIO, StreamKind.VIDEO) and not s.moderated and s.reason != SKIPPED
        ]


@dataclass(frozen=True)
class SplitMedia:
    info: MediaInfo
    # The audio tracks decoded, the default (else the first) one first; () without audio.
    audio_tracks: tuple[AudioTrack, ...] = ()
    # Frames of every video stream sampled, stream by stream (the default one first).
    frames: list[SampledFrame] = field(default_factory=list)
    subtitles: list[SubtitleCue] = field(default_factory=list)
    # Container metadata text worth moderating (title, comment, description...), by tag name.
    metadata: dict[str, str] = field(default_factory=dict)
    # Where the split's time went, in ms (open, decode, ...).
    timings_ms: dict[str, float] = field(default_factory=dict)
    # Work done: video_frames_decoded, video_packets_skipped (not decoded: no kept frame needs them).
    counters: dict[str, int] = field(default_factory=dict)

    @property
    def audio(self) -> np.ndarray | None:
        """The first track's samples (the default audio stream, else the first decodable one)."""
        return self.audio_tracks[0].samples if self.audio_tracks else None

    @property
    def audio_duration_s(self) -> float:
        """The first track's length."""
        return self.audio_tracks[0].duration_s if self.audio_tracks else 0.0

    @property
    def frame_timestamps_ms(self) -> list[int]:
        return [f.timestamp_ms for f in self.frames]
