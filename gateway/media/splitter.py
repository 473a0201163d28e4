"""Split a container (mp4, mov, webm, mkv) into 16 kHz mono audio, sampled RGB frames and
subtitle text, with hard limits. Synchronous and CPU-bound: the gateway runs it in a worker
process (gateway.media.worker), tests may call it directly.

Hostile input is bounded everywhere: the byte size and declared geometry are checked before
decoding, only whitelisted demuxers are allowed (no playlist/concat demuxers that open other
files), every loop is bounded by the decode time budget, decoded audio by max_duration_s,
kept frames by max_frames and subtitle text by the cue limits.
"""

from __future__ import annotations

import bisect
import io
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import av.error
import numpy as np

from gateway.errors import (
    DeadlineExceeded,
    DecodeBudgetExceeded,
    EmptyMedia,
    MediaTooLarge,
    MediaTooLong,
    NoUsableStream,
    ResolutionTooHigh,
    TooManyStreams,
    TooManySubtitleCues,
    TruncatedMedia,
    UndecodableMedia,
    UnsupportedMedia,
)
from gateway.media.limits import FrameStrategy, MediaLimits, SplitOptions
from gateway.media.types import AUDIO_RATE, MediaInfo, SampledFrame, SplitMedia, SubtitleCue

# Demuxers FFmpeg may pick. Probing hostile bytes must never select a playlist-style demuxer
# (hls, concat...) that would open other files or URLs.
_DEMUXERS = "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm"
_OPEN_OPTIONS = {"format_whitelist": _DEMUXERS, "probesize": str(8 * 1024 * 1024)}

# Container metadata tags whose text is worth moderating.
_METADATA_TAGS = ("title", "comment", "description", "synopsis", "keywords")
_METADATA_MAX_CHARS = 4096

# Streams of any kind (attachments, data) a container may have.
_MAX_ALL_STREAMS = 64

# A stream that fails this many packets in a row without ever producing output is given up.
_MAX_STREAM_ERRORS = 32

# Missing more than this much of the declared duration means the upload is truncated.
_TRUNCATION_MIN_S = 1.0
_TRUNCATION_FRACTION = 0.05

_ASS_OVERRIDE = re.compile(r"\{[^}]*\}")
# FFmpeg decoder names -> the codec names callers know.
_SUBTITLE_CODEC_NAMES = {"srt": "subrip", "ssa": "ass"}


def split_media(
    source: bytes | Path,
    options: SplitOptions,
    limits: MediaLimits,
    *,
    deadline_s: float | None = None,
) -> SplitMedia:
    """Split `source` (container bytes or a file path).

    deadline_s: seconds left of the caller's deadline; when shorter than the decode budget
    and it runs out, DeadlineExceeded is raised instead of DecodeBudgetExceeded.
    """
    started = time.monotonic()
    size = len(source) if isinstance(source, bytes) else source.stat().st_size
    if size == 0:
        raise EmptyMedia("media is empty (0 bytes); send the container bytes, or omit media for text-only")
    if size > limits.max_bytes:
        raise MediaTooLarge(
            f"media is {size} bytes, over the {limits.max_bytes}-byte limit; send a shorter or "
            "lower-bitrate video",
            limit="bytes",
            value=size,
            maximum=limits.max_bytes,
        )
    head = source[:64] if isinstance(source, bytes) else _read_head(source)
    clock = _Clock(started, limits.decode_budget_s, deadline_s)
    container = _open(source, head, limits.max_pixels)
    try:
        return _Splitter(container, head, options, limits, clock).run()
    except ValueError as exc:
        # PyAV raises ValueError for media it cannot convert (odd pixel or sample formats).
        raise UndecodableMedia(
            f"the media could not be decoded ({exc}); re-encode it as H.264/AAC mp4"
        ) from None
    finally:
        container.close()


def _read_head(path: Path) -> bytes:
    with path.open("rb") as handle:
        return handle.read(64)


def _looks_like_supported(head: bytes) -> bool:
    iso_bmff = head[4:8] in (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip")
    matroska = head[:4] == b"\x1a\x45\xdf\xa3"
    return iso_bmff or matroska


def _open(source: bytes | Path, head: bytes, max_pixels: int) -> Any:
    target: Any = io.BytesIO(source) if isinstance(source, bytes) else str(source)
    # Probing decodes a few frames: without a pixel cap a header declaring 8192x8192 costs
    # ~180 MB before any limit is checked (one dict per stream FFmpeg may probe).
    probe = [{"max_pixels": str(max_pixels)}] * _MAX_ALL_STREAMS
    try:
        return av.open(
            target, mode="r", options=_OPEN_OPTIONS, stream_options=probe, metadata_errors="replace"
        )
    except (av.error.FFmpegError, ValueError) as exc:
        if _looks_like_supported(head):
            raise UndecodableMedia(
                f"the media looks like mp4/mov/webm/mkv but cannot be read ({_reason(exc)}); it is "
                "probably truncated or corrupt: upload the complete file"
            ) from None
        raise UnsupportedMedia(
            "the media is not a supported container (mp4, mov, webm or mkv); re-encode it as H.264/AAC mp4"
        ) from None


def _reason(exc: BaseException) -> str:
    if isinstance(exc, av.error.FFmpegError):
        return exc.strerror or type(exc).__name__
    return str(exc) or type(exc).__name__


class _Clock:
    """The split's time budget: the configured decode budget or the caller's deadline."""

    def __init__(self, started: float, budget_s: float, deadline_s: float | None) -> None:
        self.started = started
        self.by_deadline = deadline_s is not None and deadline_s < budget_s
        self.limit_s = min(budget_s, deadline_s) if deadline_s is not None else budget_s
        self.budget_s = budget_s

    def elapsed_ms(self) -> float:
        return (time.monotonic() - self.started) * 1000.0

    def check(self) -> None:
        elapsed = time.monotonic() - self.started
        if elapsed <= self.limit_s:
            return
        if self.by_deadline:
            raise DeadlineExceeded(
                f"the request deadline passed while splitting the media ({elapsed:.1f} s); "
                "allow a longer deadline or send shorter media"
            )
        raise DecodeBudgetExceeded(
            f"splitting the media took over the {self.budget_s:.0f} s decode budget; send a shorter "
            "or lower-resolution video",
            limit="decode_budget_s",
            value=round(elapsed, 3),
            maximum=self.budget_s,
        )


@dataclass
class _StreamState:
    """Decode bookkeeping for one selected stream."""

    stream: Any
    kind: str  # audio | video | subtitle
    # False for a stream the caller skipped: demuxed (to know where the data ends), not decoded.
    decode: bool = True
    outputs: int = 0
    errors: int = 0
    first_error: str = ""
    given_up: bool = False

    def label(self) -> str:
        return f"stream {self.stream.index} ({self.kind} {self.stream.codec_context.name})"


@dataclass
class _FramePicker:
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
class _KeyframeSkipper:
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
    def for_stream(cls, stream: Any, origin_s: float, container_name: str) -> _KeyframeSkipper | None:
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


class _AudioSink:
    """Resamples decoded audio to 16 kHz mono float32, bounded by max_duration_s."""

    def __init__(self, limits: MediaLimits, too_long: Callable[[float], Exception]) -> None:
        self.too_long = too_long
        self.max_duration_s = limits.max_duration_s
        self.max_samples = int((limits.max_duration_s + 1.0) * AUDIO_RATE)
        self.resampler = self._resampler()
        self.chunks: list[np.ndarray] = []
        self.samples = 0
        self.start_s: float | None = None

    @staticmethod
    def _resampler() -> av.AudioResampler:
        return av.AudioResampler(format="flt", layout="mono", rate=AUDIO_RATE)

    def add(self, frame: Any, t: float) -> None:
        if self.start_s is None and frame.pts is not None:
            self.start_s = max(t, 0.0)
            if self.start_s > self.max_duration_s:
                raise self.too_long(self.start_s)
        try:
            self._take(self.resampler.resample(frame))
        except ValueError:
            # The stream changed sample format, layout or rate mid-way: drain the old
            # resampler and start a new one for the new parameters.
            self._take(self.resampler.resample(None))
            self.resampler = self._resampler()
            self._take(self.resampler.resample(frame))

    def _take(self, frames: list[Any]) -> None:
        for out in frames:
            self.samples += out.samples
            if self.samples > self.max_samples:
                raise self.too_long(self.samples / AUDIO_RATE)
            self.chunks.append(out.to_ndarray().reshape(-1).copy())

    def finish(self) -> np.ndarray | None:
        self._take(self.resampler.resample(None))
        if not self.chunks:
            return None
        pad = round((self.start_s or 0.0) * AUDIO_RATE)
        if pad > 0:
            # Keep the audio on the media timeline, so transcript times line up with frames.
            self.chunks.insert(0, np.zeros(pad, dtype=np.float32))
        return np.concatenate(self.chunks).astype(np.float32, copy=False)


class _Splitter:
    def __init__(
        self, container: Any, head: bytes, options: SplitOptions, limits: MediaLimits, clock: _Clock
    ) -> None:
        self.container = container
        self.head = head
        self.options = options
        self.limits = limits
        self.clock = clock
        self.undecodable: list[str] = []
        self.timings: dict[str, float] = {"open": clock.elapsed_ms()}
        # Times are reported from the container's start, so all streams share one timeline.
        start = container.start_time
        self.origin_s = max(start / 1_000_000, 0.0) if start is not None else 0.0

    # --- checks before decoding -------------------------------------------------------------

    def _container_name(self) -> str:
        name = self.container.format.name
        if name.startswith("mov"):
            brand = self.container.metadata.get("major_brand", "").strip()
            return "mov" if brand == "qt" else "mp4"
        return "webm" if b"webm" in self.head else "mkv"

    def _declared_duration_s(self) -> float | None:
        duration = self.container.duration
        if duration is None or duration <= 0:
            return None
        return duration / 1_000_000

    def _check_declared(self) -> None:
        streams = self.container.streams
        # Attachments (fonts in mkv) and data streams (timecodes in mov) are never decoded, so
        # only media streams count against the limit; everything counts against a hard cap.
        media_streams = [s for s in streams if s.type in ("audio", "video", "subtitle")]
        if len(media_streams) > self.limits.max_streams or len(streams) > _MAX_ALL_STREAMS:
            count = len(media_streams) if len(media_streams) > self.limits.max_streams else len(streams)
            raise TooManyStreams(
                f"the container has {count} streams, over the limit of {self.limits.max_streams} "
                f"audio/video/subtitle streams ({_MAX_ALL_STREAMS} in all); remux it with only the "
                "streams that matter",
                limit="streams",
                value=count,
                maximum=self.limits.max_streams,
            )
        declared = self._declared_duration_s()
        if declared is not None and declared > self.limits.max_duration_s:
            raise self._too_long(declared)

    def _too_long(self, seconds: float) -> MediaTooLong:
        return MediaTooLong(
            f"the media lasts {seconds:.1f} s, over the {self.limits.max_duration_s:.0f} s limit; "
            "send a shorter clip",
            limit="duration_s",
            value=round(seconds, 3),
            maximum=self.limits.max_duration_s,
        )

    def _check_resolution(self, width: int, height: int) -> None:
        limits = self.limits
        if width > limits.max_width or height > limits.max_height or width * height > limits.max_pixels:
            raise ResolutionTooHigh(
                f"the video is {width}x{height}, over the resolution limit ({limits.max_width}x"
                f"{limits.max_height}, {limits.max_pixels} pixels); downscale it before sending",
                limit="resolution",
                value=f"{width}x{height}",
                maximum=f"{limits.max_width}x{limits.max_height}",
            )

    # --- stream selection ---------------------------------------------------------------------

    def _decodable(self, stream: Any, kind: str) -> bool:
        context = stream.codec_context
        if context is None or context.codec is None or not context.codec.is_decoder:
            # An unknown codec id leaves PyAV without a codec context (and streams have no .codec).
            codec = getattr(getattr(context, "codec", None), "name", None) or "unknown"
            self.undecodable.append(f"stream {stream.index} ({kind} {codec}): no decoder for this codec")
            return False
        return True

    def _select(self) -> tuple[Any | None, Any | None, list[Any]]:
        """The video, audio and subtitle streams to decode, whether or not options ask for them
        (the caller sees which exist either way; run() decodes only the requested ones)."""
        streams = self.container.streams
        candidates = [s for s in streams.video if not s.disposition & av.stream.Disposition.attached_pic]
        video = next((s for s in candidates if self._decodable(s, "video")), None)
        ordered = sorted(streams.audio, key=lambda s: not s.disposition & av.stream.Disposition.default)
        audio = next((s for s in ordered if self._decodable(s, "audio")), None)
        subtitles = [s for s in streams.subtitles if self._decodable(s, "subtitle")]
        return video, audio, subtitles

    # --- the split ------------------------------------------------------------------------------

    def run(self) -> SplitMedia:
        self._check_declared()
        present_video, present_audio, subtitles = self._select()
        if present_video is None and present_audio is None and not subtitles and not self.undecodable:
            raise NoUsableStream(
                "the container has no audio, video or subtitle stream; send a video with at least one"
            )
        # Streams the caller asked to skip are reported as present but not decoded.
        video = present_video if self.options.video else None
        audio = present_audio if self.options.audio else None
        if not self.options.subtitles:
            subtitles = []

        declared = self._declared_duration_s()
        picker = None
        width = height = 0
        if present_video is not None:
            width, height = present_video.codec_context.width, present_video.codec_context.height
            self._check_resolution(width, height)
        if video is not None:
            context = video.codec_context
            context.thread_type = "AUTO"
            context.thread_count = self.options.decode_threads
            if self.options.strategy is FrameStrategy.KEYFRAMES:
                context.skip_frame = "NONKEY"
            picker = self._picker(video, declared)
        skip_nonref = picker is not None and self.options.strategy is not FrameStrategy.KEYFRAMES
        skipper = None
        if video is not None and self.options.strategy is FrameStrategy.FPS:
            skipper = _KeyframeSkipper.for_stream(video, self.origin_s, self.container.format.name)

        audio_sink = _AudioSink(self.limits, self._too_long) if audio is not None else None
        cues: list[SubtitleCue] = []
        cue_chars = 0

        states = {s.index: _StreamState(s, k) for s, k in self._kinds(video, audio, subtitles)}
        for present, kind in ((present_video, "video"), (present_audio, "audio")):
            if present is not None and present.index not in states:
                states[present.index] = _StreamState(present, kind, decode=False)
        data_end_s = 0.0
        decode_started = time.monotonic()
        demux_streams = [state.stream for state in states.values()]
        try:
            packets = self.container.demux(demux_streams) if demux_streams else iter(())
            for packet in packets:
                self.clock.check()
                # By the stream the packet decodes with: a damaged matroska file can yield a
                # packet whose stream_index disagrees with it (audio frames in the video path).
                state = states.get(packet.stream.index)
                if state is None:
                    continue  # some demuxers hand out packets of streams not asked for
                if packet.pts is not None and packet.time_base is not None and packet.size:
                    end = float((packet.pts + (packet.duration or 0)) * packet.time_base) - self.origin_s
                    data_end_s = max(data_end_s, end)
                    if end > self.limits.max_duration_s + 1.0:
                        raise self._too_long(end)
                if state.given_up or not state.decode:
                    continue
                if state.kind == "subtitle":
                    new_cues = self._subtitle_cues(state, packet)
                    for cue in new_cues:
                        cue_chars += len(cue.text)
                    cues.extend(new_cues)
                    self._check_cues(len(cues), cue_chars)
                    continue
                if skipper is not None and state.kind == "video":
                    admitted = skipper.admit(packet)
                    if admitted == "skip":
                        continue
                    if admitted == "resume":
                        state.stream.codec_context.flush_buffers()
                if skip_nonref and picker is not None and state.kind == "video" and packet.pts is not None:
                    # Per packet: the decoder drops frames no other frame references unless we
                    # might keep them (~40% fewer frames decoded with B-frames, same pixels).
                    t = float(packet.pts * packet.time_base) - self.origin_s
                    state.stream.codec_context.skip_frame = "DEFAULT" if picker.may_need(t) else "NONREF"
                decoded = self._decode(state, packet)
                if state.kind == "video":
                    assert picker is not None
                    for frame in decoded:
                        self._check_resolution(frame.width, frame.height)
                        if picker.offer(frame, self._time_s(frame)) and skipper is not None:
                            skipper.plan(picker.next_t, picker.snap_s)
                else:
                    assert audio_sink is not None
                    for frame in decoded:
                        audio_sink.add(frame, self._time_s(frame))
        except av.error.FFmpegError as exc:
            # The demuxer hit unreadable data; what was decoded so far is judged below (a
            # truncated upload is refused, a damaged tail of a complete file is tolerated).
            self.undecodable.append(f"container: reading stopped early ({_reason(exc)})")
        audio_out = audio_sink.finish() if audio_sink is not None else None
        self.timings["decode"] = (time.monotonic() - decode_started) * 1000.0

        for state in states.values():
            if state.outputs == 0 and state.errors:
                self.undecodable.append(f"{state.label()}: {state.first_error or 'no decodable data'}")

        frames = picker.frames() if picker is not None else []
        has_video = states[video.index].outputs > 0 if video is not None else present_video is not None
        has_audio = audio_out is not None if audio is not None else present_audio is not None
        decoded_subtitles = [s for s in subtitles if states[s.index].errors == 0 or states[s.index].outputs]

        if not has_audio and not has_video and not decoded_subtitles:
            reasons = "; ".join(self.undecodable) or "no decodable audio, video or subtitle data"
            raise NoUsableStream(f"no usable stream in the media ({reasons}); re-encode it as H.264/AAC mp4")
        self._check_truncation(declared, data_end_s)

        cues.sort(key=lambda c: (c.start_ms, c.stream_index))
        duration_s = declared if declared is not None else data_end_s
        interval = picker.interval_s if picker is not None else 0.0
        scene = self.options.strategy is FrameStrategy.SCENE
        info = MediaInfo(
            duration_ms=round(duration_s * 1000),
            container=self._container_name(),
            width=width if has_video else 0,
            height=height if has_video else 0,
            has_audio=has_audio,
            has_video=has_video,
            subtitle_streams=len(decoded_subtitles),
            frames_sampled=len(frames),
            undecodable_streams=tuple(self.undecodable),
            video_codec=present_video.codec_context.name if has_video and present_video else "",
            audio_codec=present_audio.codec_context.name if has_audio and present_audio else "",
            effective_fps=round(1.0 / interval, 4) if interval and has_video and not scene else 0.0,
        )
        self.timings["total"] = self.clock.elapsed_ms()
        return SplitMedia(
            info=info,
            audio=audio_out,
            frames=frames,
            subtitles=cues,
            metadata=self._metadata(),
            timings_ms=self.timings,
            counters={
                "video_frames_decoded": states[video.index].outputs if video is not None else 0,
                "video_packets_skipped": skipper.skipped if skipper is not None else 0,
            },
        )

    @staticmethod
    def _kinds(video: Any, audio: Any, subtitles: list[Any]) -> list[tuple[Any, str]]:
        kinds = [(video, "video"), (audio, "audio")]
        return [(s, k) for s, k in kinds if s is not None] + [(s, "subtitle") for s in subtitles]

    def _picker(self, video: Any, declared: float | None) -> _FramePicker:
        options = self.options
        interval = 1.0 / options.frame_sample_fps
        if declared is not None and options.max_frames > 0 and declared / interval >= options.max_frames:
            # Spread the frame budget over the whole video rather than stopping early.
            interval = declared / options.max_frames
        rate = video.average_rate or video.guessed_rate
        frame_period = 1.0 / float(rate) if rate else 0.04
        side = options.frame_max_side

        def size(width: int, height: int) -> tuple[int, int]:
            scale = min(1.0, side / max(width, height, 1))
            return max(1, round(width * scale)), max(1, round(height * scale))

        grid = 1.0 / options.scene_probe_fps if options.strategy is FrameStrategy.SCENE else interval
        return _FramePicker(
            options,
            interval_s=interval,
            tolerance_s=frame_period / 2,
            size=size,
            grid_s=grid,
            end_s=declared if declared is not None else math.inf,
        )

    def _time_s(self, frame: Any) -> float:
        pts = frame.pts
        if pts is None or frame.time_base is None:
            return 0.0
        return float(pts * frame.time_base) - self.origin_s

    def _decode(self, state: _StreamState, packet: Any) -> list[Any]:
        try:
            decoded = packet.decode()
        except av.error.FFmpegError as exc:
            state.errors += 1
            state.first_error = state.first_error or _reason(exc)
            if state.outputs == 0 and state.errors >= _MAX_STREAM_ERRORS:
                state.given_up = True
            return []
        state.outputs += len(decoded)
        return decoded

    def _subtitle_cues(self, state: _StreamState, packet: Any) -> list[SubtitleCue]:
        if not packet.size or packet.pts is None:
            return []
        try:
            subtitle_set = state.stream.codec_context.decode2(packet)
        except av.error.FFmpegError as exc:
            state.errors += 1
            state.first_error = state.first_error or _reason(exc)
            state.given_up = state.outputs == 0 and state.errors >= _MAX_STREAM_ERRORS
            return []
        if subtitle_set is None:
            return []
        start_s = float(packet.pts * packet.time_base) - self.origin_s
        if packet.duration:
            end_s = start_s + float(packet.duration * packet.time_base)
        elif subtitle_set.end_display_time > subtitle_set.start_display_time:
            end_s = start_s + subtitle_set.end_display_time / 1000.0
        else:
            end_s = start_s
        start_s += subtitle_set.start_display_time / 1000.0
        texts = []
        for rect in subtitle_set:
            if rect.type == b"bitmap":
                state.given_up = True
                state.errors += 1
                state.first_error = "bitmap subtitles carry no text"
                return []
            texts.append(_rect_text(rect))
        text = "\n".join(t for t in texts if t)
        state.outputs += 1
        if not text:
            return []
        return [
            SubtitleCue(
                text=text,
                start_ms=max(round(start_s * 1000), 0),
                end_ms=max(round(end_s * 1000), 0),
                stream_index=state.stream.index,
                codec=_SUBTITLE_CODEC_NAMES.get(name := state.stream.codec_context.name, name),
                language=state.stream.language or "",
            )
        ]

    def _check_cues(self, count: int, chars: int) -> None:
        limits = self.limits
        if count > limits.max_subtitle_cues or chars > limits.max_subtitle_chars:
            raise TooManySubtitleCues(
                f"the subtitle streams hold over {limits.max_subtitle_cues} cues or "
                f"{limits.max_subtitle_chars} characters; strip the subtitles or send them trimmed",
                limit="subtitle_cues",
                value=count,
                maximum=limits.max_subtitle_cues,
            )

    def _check_truncation(self, declared: float | None, data_end_s: float) -> None:
        if declared is None:
            return
        missing = declared - data_end_s
        if missing > max(_TRUNCATION_MIN_S, _TRUNCATION_FRACTION * declared):
            raise TruncatedMedia(
                f"the media is truncated: the container declares {declared:.1f} s but its data ends "
                f"at {data_end_s:.1f} s; upload the complete file"
            )

    def _metadata(self) -> dict[str, str]:
        found: dict[str, str] = {}
        for key, value in self.container.metadata.items():
            tag = key.lower()
            if tag in _METADATA_TAGS and value.strip():
                found[tag] = value.strip()[:_METADATA_MAX_CHARS]
        return found


def _rect_text(rect: Any) -> str:
    """Plain text of one text subtitle rect (ASS dialogue lines lose their markup)."""
    if rect.type == b"ass":
        # "ReadOrder,Layer,Style,Name,MarginL,MarginR,MarginV,Effect,Text": text may hold commas.
        line = rect.ass.decode("utf-8", errors="replace")
        parts = line.split(",", 8)
        text = parts[8] if len(parts) == 9 else line
        text = _ASS_OVERRIDE.sub("", text)
        text = text.replace("\\N", "\n").replace("\\n", "\n").replace("\\h", " ")
    else:
        text = rect.text.decode("utf-8", errors="replace")
    return "\n".join(line.strip() for line in text.strip().splitlines() if line.strip())
