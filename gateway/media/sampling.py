"""Which decoded video frames a split keeps, and which packets it need not decode at all.

FramePicker applies the sampling strategy (FPS, KEYFRAMES, SCENE) to decoded frames within the
max_frames cap; KeyframeSkipper uses the container's keyframe index to skip runs of packets
that no kept frame depends on.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np

from gateway.media.limits import FrameStrategy, SplitOptions
from gateway.media.types import SampledFrame


@dataclass
class FramePicker:
    """Chooses which decoded video frames to keep, for every strategy.

    FPS and KEYFRAMES keep a frame when it reaches the next sampling time; SCENE keeps the
    first frame and every probe frame that differs enough from the previous probe. When more
    than max_frames would be kept (unknown or lying duration), FPS/KEYFRAMES halve their rate
    and thin what they hold, so the frames still span the whole video; SCENE keeps its
    largest changes.
    """

    options: SplitOptions
    interval_s: float
    tolerance_s: float
    size: Callable[[int, int], tuple[int, int]]
    grid_s: float = 1.0  # sampling (FPS) or probing (SCENE) interval the picker starts with
    end_s: float = math.inf  # declared duration: no sampling time at or past it gets a stand-in
    next_t: float = 0.0
    probe_next_t: float = 0.0
    previous_thumb: np.ndarray | None = None
    kept: list[tuple[float, SampledFrame]] = field(default_factory=list)  # (score, frame)

    @classmethod
    def for_video(cls, video: Any, options: SplitOptions, end_s: float | None) -> FramePicker:
        """The picker for one video stream whose declared end (None: unknown) is end_s."""
        interval = 1.0 / options.frame_sample_fps
        if end_s is not None and options.max_frames > 0 and end_s / interval >= options.max_frames:
            # Spread the frame budget over the whole video rather than stopping early.
            interval = end_s / options.max_frames
        rate = video.average_rate or video.guessed_rate
        frame_period = 1.0 / float(rate) if rate else 0.04
        side = options.frame_max_side

        def size(width: int, height: int) -> tuple[int, int]:
            scale = min(1.0, side / max(width, height, 1))
            return max(1, round(width * scale)), max(1, round(height * scale))

        grid = 1.0 / options.scene_probe_fps if options.strategy is FrameStrategy.SCENE else interval
        return cls(
            options,
            interval_s=interval,
            tolerance_s=frame_period / 2,
            size=size,
            grid_s=grid,
            end_s=end_s if end_s is not None else math.inf,
        )

    def offer(self, frame: Any, t: float) -> bool:
        """Consider one decoded frame; True when the next sampling time moved on."""
        strategy = self.options.strategy
        if strategy is FrameStrategy.SCENE:
            self._offer_scene(frame, t)
            return False
        if strategy is FrameStrategy.KEYFRAMES and not frame.key_frame:
            return False  # a decoder that ignores skip_frame (e.g. VP9) still hands us every frame
        if t + self.tolerance_s < self.next_t and not (frame.key_frame and t >= self.next_t - self.snap_s):
            return False
        self.kept.append((0.0, self._sample(frame, t)))
        # A keyframe taken early stands for the sampling time ahead of it: move past that one.
        following = (math.floor((t + self.tolerance_s) / self.interval_s) + 1) * self.interval_s
        self.next_t = max(following, self.next_t + self.interval_s)
        if len(self.kept) > self.options.max_frames:
            self.interval_s *= 2
            self.next_t = (math.floor((t + self.tolerance_s) / self.interval_s) + 1) * self.interval_s
            self.kept = self.kept[::2]
        return True

    @property
    def snap_s(self) -> float:
        """How far from a sampling time a keyframe may stand in for it (FPS only)."""
        if self.options.strategy is not FrameStrategy.FPS or self.next_t >= self.end_s - self.tolerance_s:
            return 0.0
        return self.options.keyframe_snap * self.interval_s

    def may_need(self, t: float) -> bool:
        """Whether a frame shown at t could be kept: it lies just at or after a point of the
        sampling grid. Frames elsewhere that no other frame references need not be decoded
        (the grid only gets sparser when the frame cap halves the rate, so this stays safe)."""
        interval = self.grid_s
        offset = t - round(t / interval) * interval
        return -self.tolerance_s - 0.005 <= offset <= self.tolerance_s * 4 + 0.005

    def _offer_scene(self, frame: Any, t: float) -> None:
        probe_interval = 1.0 / self.options.scene_probe_fps
        if t + self.tolerance_s < self.probe_next_t:
            return
        self.probe_next_t = (math.floor((t + self.tolerance_s) / probe_interval) + 1) * probe_interval
        # Colour, not luma only: a cut between scenes of similar brightness is still a cut.
        thumb = frame.reformat(width=16, height=16, format="rgb24").to_ndarray().astype(np.float32)
        if self.previous_thumb is None:
            score = math.inf
        else:
            score = float(np.mean(np.abs(thumb - self.previous_thumb))) / 255.0
        self.previous_thumb = thumb
        if score < self.options.scene_threshold:
            return
        self.kept.append((score, self._sample(frame, t)))
        if len(self.kept) > self.options.max_frames:
            weakest = min(range(len(self.kept)), key=lambda i: self.kept[i][0])
            del self.kept[weakest]

    def _sample(self, frame: Any, t: float) -> SampledFrame:
        width, height = self.size(frame.width, frame.height)
        rgb = frame.reformat(width=width, height=height, format="rgb24", interpolation="AREA")
        return SampledFrame(
            timestamp_ms=round(t * 1000), image=rgb.to_ndarray(), keyframe=bool(frame.key_frame)
        )

    def frames(self) -> list[SampledFrame]:
        return [frame for _, frame in self.kept]


@dataclass
class KeyframeSkipper:
    """Skips decoding runs of video that no kept frame depends on.

    FPS sampling needs the frame at each sampling time, and decoding a frame needs everything
    since its keyframe. When a keyframe lies between the last fed packet and the next sampling
    time, the packets before that keyframe affect nothing we keep: they are not decoded at
    all. This matters for long videos, where the frame cap spreads samples seconds apart while
    phones put a keyframe every second or two. Keyframe positions come from the container
    index (complete in mp4/mov; cluster cues in mkv/webm), so without one nothing is skipped.
    """

    keyframes: list[int]  # index timestamps of keyframes, stream time base, sorted
    time_base: Fraction
    origin_s: float
    use_pts: bool  # matroska indexes presentation times, mov decode times
    margin: int  # ticks kept before a keyframe: covers B-frame reordering and the pick tolerance
    resume_at: int | None = None
    fed: int | None = None
    skipped: int = 0

    @classmethod
    def for_stream(cls, stream: Any, origin_s: float, container_name: str) -> KeyframeSkipper | None:
        time_base = stream.time_base
        if not time_base:
            return None
        keyframes = sorted(entry.timestamp for entry in stream.index_entries if entry.is_keyframe)
        if len(keyframes) < 2:
            return None
        margin = int(0.25 / time_base)
        return cls(keyframes, time_base, origin_s, not container_name.startswith("mov"), margin)

    def _ts(self, packet: Any) -> int | None:
        return packet.pts if self.use_pts or packet.dts is None else packet.dts

    def plan(self, next_t_s: float, snap_s: float = 0.0) -> None:
        """The next sampling time moved to next_t_s: skip ahead when a keyframe precedes it, or
        to the keyframe nearest to it within snap_s (which then stands in for that time)."""
        if self.fed is None:
            return
        target = int((next_t_s + self.origin_s) / self.time_base)
        if snap_s > 0:
            reach = int(snap_s / self.time_base)
            lo = bisect.bisect_left(self.keyframes, max(target - reach, self.fed + self.margin + 1))
            hi = bisect.bisect_right(self.keyframes, target + reach)
            if lo < hi:
                self.resume_at = min(self.keyframes[lo:hi], key=lambda k: abs(k - target))
                return
        limit = target - self.margin
        i = bisect.bisect_right(self.keyframes, limit) - 1
        if i >= 0 and self.keyframes[i] > self.fed + self.margin:
            self.resume_at = self.keyframes[i]

    def admit(self, packet: Any) -> str:
        """ "decode", "skip", or "resume" (decode after flushing the decoder)."""
        ts = self._ts(packet)
        if self.resume_at is not None and packet.size:
            if ts is None or not packet.is_keyframe or ts < self.resume_at - self.margin:
                self.skipped += 1
                return "skip"
            self.resume_at = None
            self.fed = ts
            return "resume"
        if ts is not None:
            self.fed = ts
        return "decode"
