"""What the splitter may do to one piece of media: hard limits and the sampling plan.

Plain frozen dataclasses (no env reads here): the gateway config builds them, and they cross
the process boundary into split workers.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

MiB = 1024 * 1024


class StreamsOverLimit(StrEnum):
    """What happens to audio tracks / video streams past max_audio_tracks / max_video_streams.

    REVIEW and IGNORE moderate the first streams (the default one first, then container
    order) and report the rest in the verdict (MediaInfo.streams, reasons), which is marked
    degraded; REVIEW also makes the decision at least REVIEW, as the default policy does for
    a modality that did not run. REJECT refuses the media (RESOURCE_EXHAUSTED) before
    decoding it."""

    REVIEW = "review"
    IGNORE = "ignore"
    REJECT = "reject"


class FrameStrategy(StrEnum):
    # Frames at a fixed rate (frame_sample_fps), spread over the whole video.
    FPS = "fps"
    # Only keyframes (the decoder skips every other frame: cheapest), at most one per 1/fps.
    KEYFRAMES = "keyframes"
    # Frames where the picture changes (probed at scene_probe_fps), plus the first frame.
    SCENE = "scene"


@dataclass(frozen=True)
class MediaLimits:
    """Hard limits; exceeding one raises a LimitExceeded subclass (RESOURCE_EXHAUSTED)."""

    max_bytes: int = 256 * MiB
    max_duration_s: float = 600.0
    max_width: int = 4096
    max_height: int = 4096
    max_pixels: int = 4096 * 2160
    max_streams: int = 8
    # Audio tracks transcribed and video streams sampled (the default stream first, then
    # container order). Past them a stream is not decoded and is reported as over the limit,
    # or the media is refused (TooManyStreams) when reject_extra_streams.
    max_audio_tracks: int = 4
    max_video_streams: int = 2
    reject_extra_streams: bool = False
    max_subtitle_cues: int = 10_000
    max_subtitle_chars: int = 1_000_000
    # Wall-clock budget for one split (open + demux + decode), checked between packets.
    decode_budget_s: float = 60.0


@dataclass(frozen=True)
class SplitOptions:
    """How to sample one piece of media (per request: gateway defaults + request options)."""

    strategy: FrameStrategy = FrameStrategy.FPS
    frame_sample_fps: float = 1.0
    max_frames: int = 64
    # Longest side of a sampled frame after downscaling (aspect ratio kept; never upscaled).
    frame_max_side: int = 336
    # SCENE: candidate frames per second and the mean-absolute-difference (0..1) that counts
    # as a change.
    scene_probe_fps: float = 4.0
    scene_threshold: float = 0.12
    audio: bool = True
    video: bool = True
    subtitles: bool = True
    # Decoder threads per stream (0: FFmpeg picks).
    decode_threads: int = 2
    # FPS: a keyframe within this fraction of the sampling interval of a sampling time stands
    # in for the frame at that time. Decoding a keyframe needs nothing before it, so with the
    # common 1-2 s keyframe spacing most samples cost one decoded frame instead of a run from
    # the previous keyframe. 0 keeps the exact sampling times (0.5: anywhere in the slot).
    keyframe_snap: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "strategy", FrameStrategy(self.strategy))
        if not self.frame_sample_fps > 0 or not self.scene_probe_fps > 0:
            raise ValueError("frame_sample_fps and scene_probe_fps must be > 0")
        if self.max_frames < 1 or self.frame_max_side < 1:
            raise ValueError("max_frames and frame_max_side must be >= 1")
        if not 0.0 <= self.keyframe_snap <= 0.5:
            raise ValueError("keyframe_snap must be within [0, 0.5] (a fraction of the sampling interval)")
