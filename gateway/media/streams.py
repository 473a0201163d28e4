"""Stream bookkeeping for one split: which streams to read, how each one is doing, where the
media's data ends, and the split's time budget.

Nothing here decodes pictures or sound itself; the splitter (gateway.media.splitter) drives
these pieces while it demuxes.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

import av
import av.error

from gateway.errors import DeadlineExceeded, DecodeBudgetExceeded, TooManyStreams
from gateway.media.limits import MediaLimits, SplitOptions

# A stream that fails this many packets in a row without ever producing output is given up.
MAX_STREAM_ERRORS = 32

# Missing more than this much of the declared duration means the upload is truncated.
_TRUNCATION_MIN_S = 1.0
_TRUNCATION_FRACTION = 0.05

# Matroska's per-track DURATION tag (written by FFmpeg and mkvmerge): "HH:MM:SS.nnnnnnnnn".
_DURATION_TAG = re.compile(r"(\d{1,9}):(\d{2}):(\d{2}(?:\.\d{1,12})?)")


def reason(exc: BaseException) -> str:
    """What FFmpeg (or PyAV) said went wrong, for an error message."""
    if isinstance(exc, av.error.FFmpegError):
        return exc.strerror or type(exc).__name__
    return str(exc) or type(exc).__name__


class Clock:
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
class StreamState:
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

    def failed(self, exc: BaseException) -> None:
        """One packet did not decode; a stream that never decoded anything is given up after
        MAX_STREAM_ERRORS of them (a damaged or mislabelled stream, not a damaged packet)."""
        self.errors += 1
        self.first_error = self.first_error or reason(exc)
        if self.outputs == 0 and self.errors >= MAX_STREAM_ERRORS:
            self.given_up = True

    def decode_packet(self, packet: Any) -> list[Any]:
        """The frames one audio or video packet decodes to ([] when it fails)."""
        try:
            decoded = packet.decode()
        except av.error.FFmpegError as exc:
            self.failed(exc)
            return []
        self.outputs += len(decoded)
        return decoded


@dataclass(frozen=True)
class Selection:
    """The streams a split reads, within the stream limits, each list with the stream the
    container marks as default first and then in container order: `video` (cover art aside)
    and `audio` whether or not the caller asked for them (a skipped one is still demuxed, to
    know where the data ends), and every decodable subtitle stream. The first video and audio
    stream are the ones MediaInfo's width, height and codecs describe.

    `notes` says, by stream index, why a stream is not read (no decoder, cover art, over a
    limit); `over_limit` holds those left out only because of a limit."""

    video: list[Any]
    audio: list[Any]
    subtitles: list[Any]
    notes: dict[int, str] = field(default_factory=dict)
    over_limit: list[Any] = field(default_factory=list)


def select_streams(container: Any, undecodable: list[str], max_video: int, max_audio: int) -> Selection:
    """Every decodable video (cover art aside), audio and subtitle stream, the video and
    audio ones up to max_video / max_audio; streams without a decoder are added to
    `undecodable` (reported, not fatal)."""
    streams = container.streams
    notes: dict[int, str] = {}
    candidates = []
    for stream in streams.video:
        if stream.disposition & av.stream.Disposition.attached_pic:
            notes[stream.index] = "cover art (an attached picture): not sampled"
        else:
            candidates.append(stream)
    video = _default_first([s for s in candidates if _decodable(s, "video", undecodable, notes)])
    audio = _default_first([s for s in streams.audio if _decodable(s, "audio", undecodable, notes)])
    subtitles = [s for s in streams.subtitles if _decodable(s, "subtitle", undecodable, notes)]
    over_limit = video[max_video:] + audio[max_audio:]
    for stream in video[max_video:]:
        notes[stream.index] = (
            f"over the limit of {max_video} video streams sampled (MODGATE_GATEWAY_MAX_VIDEO_STREAMS)"
        )
    for stream in audio[max_audio:]:
        notes[stream.index] = (
            f"over the limit of {max_audio} audio tracks transcribed (MODGATE_GATEWAY_MAX_AUDIO_TRACKS)"
        )
    return Selection(video[:max_video], audio[:max_audio], subtitles, notes, over_limit)


def check_stream_limits(selection: Selection, options: SplitOptions, limits: MediaLimits) -> None:
    """With reject_extra_streams, refuse audio tracks / video streams over their limits (of
    the kinds the caller asked for), before anything is decoded."""
    if not limits.reject_extra_streams:
        return
    checks = [
        (options.audio, selection.audio, "audio", "tracks", limits.max_audio_tracks),
        (options.video, selection.video, "video", "streams", limits.max_video_streams),
    ]
    for asked, kept, kind, unit, maximum in checks:
        extra = [s for s in selection.over_limit if s.type == kind]
        if asked and extra:
            count = len(kept) + len(extra)
            raise TooManyStreams(
                f"the media has {count} {kind} {unit}, over the limit of {maximum} "
                f"(MODGATE_GATEWAY_MAX_{kind.upper()}_{unit.upper()}); remux it with at most "
                f"{maximum}, or let the gateway moderate the first {maximum} and report the rest "
                "(MODGATE_GATEWAY_STREAMS_OVER_LIMIT=review or ignore)",
                limit=f"{kind}_{unit}",
                value=count,
                maximum=maximum,
            )


def _default_first(streams: list[Any]) -> list[Any]:
    return sorted(streams, key=lambda s: not s.disposition & av.stream.Disposition.default)


def _decodable(stream: Any, kind: str, undecodable: list[str], notes: dict[int, str]) -> bool:
    context = stream.codec_context
    if context is None or context.codec is None or not context.codec.is_decoder:
        # An unknown codec id leaves PyAV without a codec context (and streams have no .codec).
        codec = getattr(getattr(context, "codec", None), "name", None) or "unknown"
        undecodable.append(f"stream {stream.index} ({kind} {codec}): no decoder for this codec")
        notes[stream.index] = "no decoder for this codec"
        return False
    return True


def declared_duration_s(container: Any) -> float | None:
    """The container's duration: the whole timeline, subtitle cues included."""
    duration = container.duration
    if duration is None or duration <= 0:
        return None
    return duration / 1_000_000


def _stream_end_s(stream: Any, origin_s: float) -> float | None:
    """Where a stream declares its own data ends (mp4/mov track durations, Matroska DURATION
    tags), on the media timeline; None when it declares nothing."""
    time_base = stream.time_base
    start_s = float(stream.start_time * time_base) if stream.start_time is not None and time_base else 0.0
    if stream.duration and time_base:
        return start_s + float(stream.duration * time_base) - origin_s
    match = _DURATION_TAG.fullmatch(stream.metadata.get("DURATION", "").strip())
    if match is None:
        return None
    hours, minutes, seconds = match.groups()
    return start_s + int(hours) * 3600 + int(minutes) * 60 + float(seconds) - origin_s


def _missing_allowed_s(declared_s: float) -> float:
    return max(_TRUNCATION_MIN_S, _TRUNCATION_FRACTION * declared_s)


@dataclass
class Timeline:
    """Where the media is declared to end and where its data actually ends.

    The container's duration covers every stream, so a single subtitle cue at 400 s makes a
    2 s video "last" 401 s. When the audio and video streams declare their own lengths and
    those end well before the container's duration, the rest of the timeline holds only
    subtitles: frames are spread over the audio/video part and truncation is judged on the
    audio/video data alone. Otherwise the container's duration is the only declaration and is
    compared with the data of every stream read (subtitles included).
    """

    origin_s: float
    declared_s: float | None  # the container's duration
    av_declared_s: float | None = None  # the audio/video streams' own end, when it falls short
    av_end_s: float = 0.0  # where audio/video data ends
    data_end_s: float = 0.0  # where the data of any stream read ends

    @classmethod
    def of(cls, container: Any, av_streams: list[Any], origin_s: float) -> Timeline:
        declared = declared_duration_s(container)
        ends = [_stream_end_s(stream, origin_s) for stream in av_streams]
        if declared is None or not ends or None in ends:
            return cls(origin_s, declared)
        av_end = max(end for end in ends if end is not None)
        if declared - av_end > _missing_allowed_s(declared):
            return cls(origin_s, declared, av_declared_s=av_end)
        return cls(origin_s, declared)

    @property
    def media_end_s(self) -> float | None:
        """The end of the audio/video part as declared (None: not declared)."""
        return self.av_declared_s if self.av_declared_s is not None else self.declared_s

    def note(self, packet: Any, kind: str) -> float | None:
        """Record one demuxed packet; returns where its data ends (None: no timestamp)."""
        if packet.pts is None or packet.time_base is None or not packet.size:
            return None
        end = float((packet.pts + (packet.duration or 0)) * packet.time_base) - self.origin_s
        self.data_end_s = max(self.data_end_s, end)
        if kind != "subtitle":
            self.av_end_s = max(self.av_end_s, end)
        return end

    def missing_s(self) -> float:
        """How much of the declared end the data falls short of (<= 0: none missing)."""
        if self.av_declared_s is not None:
            return self.av_declared_s - self.av_end_s
        if self.declared_s is None:
            return 0.0
        return self.declared_s - self.data_end_s

    def truncated(self) -> bool:
        declared = self.media_end_s
        return declared is not None and self.missing_s() > _missing_allowed_s(declared)
