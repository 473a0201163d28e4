"""What the splitter produces from one container."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

AUDIO_RATE = 16_000  # Hz; what speech recognition expects


@dataclass(frozen=True)
class SampledFrame:
    timestamp_ms: int  # presentation time from the start of the media
    image: np.ndarray  # (height, width, 3) uint8 RGB, already downscaled
    keyframe: bool


@dataclass(frozen=True)
class SubtitleCue:
    """One cue of an embedded subtitle stream, as plain text (ASS markup removed)."""

    text: str
    start_ms: int
    end_ms: int
    stream_index: int
    codec: str  # mov_text, subrip, webvtt, ass...
    language: str = ""


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


@dataclass(frozen=True)
class SplitMedia:
    info: MediaInfo
    # 16 kHz mono float32 in [-1, 1]; None when there is no (decodable) audio stream.
    audio: np.ndarray | None
    frames: list[SampledFrame] = field(default_factory=list)
    subtitles: list[SubtitleCue] = field(default_factory=list)
    # Container metadata text worth moderating (title, comment, description...), by tag name.
    metadata: dict[str, str] = field(default_factory=dict)
    # Where the split's time went, in ms (open, decode, ...).
    timings_ms: dict[str, float] = field(default_factory=dict)
    # Work done: video_frames_decoded, video_packets_skipped (not decoded: no kept frame needs them).
    counters: dict[str, int] = field(default_factory=dict)

    @property
    def audio_duration_s(self) -> float:
        return 0.0 if self.audio is None else len(self.audio) / AUDIO_RATE

    @property
    def frame_timestamps_ms(self) -> list[int]:
        return [f.timestamp_ms for f in self.frames]
