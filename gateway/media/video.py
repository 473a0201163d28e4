"""One video stream being sampled: its decoder settings, the frames it keeps, the packets it skips.

A split samples every video stream it moderates (up to MediaLimits.max_video_streams), each in
its own lane over the same pass of the demuxer. The frame budget (SplitOptions.max_frames) is
shared: with several streams each gets an equal part of it, so a request costs the vision
service no more frames than it asked for however many video streams the container has.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gateway.media.limits import FrameStrategy, SplitOptions
from gateway.media.sampling import FramePicker, KeyframeSkipper
from gateway.media.streams import StreamState
from gateway.media.types import SampledFrame


def frame_time_s(frame: Any, origin_s: float) -> float:
    """A decoded frame's presentation time on the media timeline (0 when it has none)."""
    pts = frame.pts
    if pts is None or frame.time_base is None:
        return 0.0
    return float(pts * frame.time_base) - origin_s


def frame_share(options: SplitOptions, streams: int) -> SplitOptions:
    """The sampling options of one of `streams` video streams: an equal part of max_frames."""
    if streams <= 1:
        return options
    return dataclasses.replace(options, max_frames=max(1, options.max_frames // streams))


@dataclass
class VideoLane:
    stream: Any
    picker: FramePicker
    skipper: KeyframeSkipper | None
    # Let the decoder drop frames no other frame references unless the picker may keep them.
    skip_nonref: bool
    origin_s: float

    @classmethod
    def open(
        cls, stream: Any, options: SplitOptions, end_s: float | None, origin_s: float, container_format: str
    ) -> VideoLane:
        """Configure the stream's decoder; the lane that samples it."""
        context = stream.codec_context
        context.thread_type = "AUTO"
        context.thread_count = options.decode_threads
        if options.strategy is FrameStrategy.KEYFRAMES:
            context.skip_frame = "NONKEY"
        picker = FramePicker.for_video(stream, options, end_s)
        skipper = None
        if options.strategy is FrameStrategy.FPS:
            skipper = KeyframeSkipper.for_stream(stream, origin_s, container_format)
        return cls(stream, picker, skipper, options.strategy is not FrameStrategy.KEYFRAMES, origin_s)

    def feed(self, state: StreamState, packet: Any, check_size: Callable[[int, int], None]) -> None:
        """Decode one packet of the stream (unless no kept frame needs it) and offer its frames
        to the picker; check_size raises for a frame over the resolution limit."""
        picker, skipper = self.picker, self.skipper
        if skipper is not None:
            admitted = skipper.admit(packet)
            if admitted == "skip":
                return
            if admitted == "resume":
                self.stream.codec_context.flush_buffers()
        if self.skip_nonref and packet.pts is not None:
            # Per packet: the decoder drops frames no other frame references unless we might
            # keep them (with B-frames that is many fewer frames decoded, same pixels).
            t = float(packet.pts * packet.time_base) - self.origin_s
            self.stream.codec_context.skip_frame = "DEFAULT" if picker.may_need(t) else "NONREF"
        for frame in state.decode_packet(packet):
            check_size(frame.width, frame.height)
            if picker.offer(frame, frame_time_s(frame, self.origin_s)) and skipper is not None:
                skipper.plan(picker.next_t, picker.snap_s)

    def frames(self) -> list[SampledFrame]:
        index = self.stream.index
        return [dataclasses.replace(frame, stream_index=index) for frame in self.picker.frames()]

    @property
    def packets_skipped(self) -> int:
        return self.skipper.skipped if self.skipper is not None else 0
