"""Split a container (mp4, mov, webm, mkv) into 16 kHz mono audio (one track per audio stream),
sampled RGB frames (of each video stream) and subtitle text, with hard limits. Synchronous and
CPU-bound: the gateway runs it in a worker process (gateway.media.worker), tests may call it
directly.

Hostile input is bounded everywhere: the byte size and declared geometry are checked before
decoding, only whitelisted demuxers are allowed (no playlist/concat demuxers that open other
files), every loop is bounded by the decode time budget, decoded audio by max_duration_s,
kept frames by max_frames and subtitle text by the cue limits.

This module opens the container and runs one split in three phases: prepare (check what the
container declares, select streams, set up decoders), demux (one pass over the packets) and
result (judge what was decoded, build SplitMedia). The pieces it drives live beside it:
gateway.media.streams (stream selection within the audio-track / video-stream limits, stream
state, the timeline, the time budget), gateway.media.video (one lane per video stream sampled,
over gateway.media.sampling: which frames to keep and which packets to skip),
gateway.media.audio (16 kHz resampling, one sink per audio track), gateway.media.subtitles (cue
text) and gateway.media.inventory (every stream of the container, and why one was not
moderated). Media with one audio and one video stream splits exactly as it did before several
were read.

Subtitle cues past the end of the audio and video (a 2 s video with a cue at 400 s) are kept:
a player's timeline runs to the last cue, so a viewer can see them. They count against
max_duration_s like any other data (the container's duration covers them), but truncation is
judged on the audio/video streams' own declared length when they declare one (see
streams.Timeline), so such a file is not mistaken for an interrupted upload.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import av.error

from gateway.errors import (
    EmptyMedia,
    MediaTooLarge,
    MediaTooLong,
    NoUsableStream,
    ResolutionTooHigh,
    TooManyStreams,
    TruncatedMedia,
    UndecodableMedia,
    UnsupportedMedia,
)
from gateway.media.audio import AudioSink
from gateway.media.inventory import decoded_streams, is_default, language, stream_reports
from gateway.media.limits import FrameStrategy, MediaLimits, SplitOptions
from gateway.media.streams import (
    Clock,
    Selection,
    StreamState,
    Timeline,
    check_stream_limits,
    declared_duration_s,
    reason,
    select_streams,
)
from gateway.media.subtitles import CueCollector
from gateway.media.types import AudioTrack, MediaInfo, SplitMedia
from gateway.media.video import VideoLane, frame_share, frame_time_s

# Demuxers FFmpeg may pick. Probing hostile bytes must never select a playlist-style demuxer
# (hls, concat...) that would open other files or URLs.
_DEMUXERS = "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm"
_OPEN_OPTIONS = {"format_whitelist": _DEMUXERS, "probesize": str(8 * 1024 * 1024)}

# Container metadata tags whose text is worth moderating.
_METADATA_TAGS = ("title", "comment", "description", "synopsis", "keywords")
_METADATA_MAX_CHARS = 4096

# Streams of any kind (attachments, data) a container may have.
_MAX_ALL_STREAMS = 64


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
    clock = Clock(started, limits.decode_budget_s, deadline_s)
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
    # Probing decodes a few frames: without a pixel cap a header declaring 8192x8192 makes
    # FFmpeg allocate pictures that size before any limit is checked (one dict per stream
    # FFmpeg may probe).
    probe = [{"max_pixels": str(max_pixels)}] * _MAX_ALL_STREAMS
    try:
        return av.open(
            target, mode="r", options=_OPEN_OPTIONS, stream_options=probe, metadata_errors="replace"
        )
    except (av.error.FFmpegError, ValueError) as exc:
        if _looks_like_supported(head):
            raise UndecodableMedia(
                f"the media looks like mp4/mov/webm/mkv but cannot be read ({reason(exc)}); it is "
                "probably truncated or corrupt: upload the complete file"
            ) from None
        raise UnsupportedMedia(
            "the media is not a supported container (mp4, mov, webm or mkv); re-encode it as H.264/AAC mp4"
        ) from None


@dataclass
class _Demux:
    """What prepare() set up for the pass over the packets, and what that pass collects."""

    present: Selection  # the streams read (reported even when not decoded)
    lanes: dict[int, VideoLane]  # the video streams decoded (present, asked for), by index
    audio: dict[int, AudioSink]  # the audio streams decoded, by stream index, in Selection order
    subtitles: list[Any]
    width: int  # of the first video stream (0: none)
    height: int
    states: dict[int, StreamState]  # by stream index: every stream demuxed
    timeline: Timeline
    cues: CueCollector


class _Splitter:
    def __init__(
        self, container: Any, head: bytes, options: SplitOptions, limits: MediaLimits, clock: Clock
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

    def run(self) -> SplitMedia:
        demux = self._prepare()
        decode_started = time.monotonic()
        self._demux(demux)
        tracks = self._audio_tracks(demux)
        self.timings["decode"] = (time.monotonic() - decode_started) * 1000.0
        return self._result(demux, tracks)

    # --- checks before decoding -------------------------------------------------------------

    def _container_name(self) -> str:
        name = self.container.format.name
        if name.startswith("mov"):
            brand = self.container.metadata.get("major_brand", "").strip()
            return "mov" if brand == "qt" else "mp4"
        return "webm" if b"webm" in self.head else "mkv"

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
        # The whole timeline, subtitle cues included: a cue past the limit is past it too.
        declared = declared_duration_s(self.container)
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

    # --- prepare ------------------------------------------------------------------------------

    def _prepare(self) -> _Demux:
        self._check_declared()
        limits, options = self.limits, self.options
        present = select_streams(
            self.container, self.undecodable, limits.max_video_streams, limits.max_audio_tracks
        )
        if not present.video and not present.audio and not present.subtitles and not self.undecodable:
            raise NoUsableStream(
                "the container has no audio, video or subtitle stream; send a video with at least one"
            )
        check_stream_limits(present, options, limits)
        # Streams the caller asked to skip are reported as present but not decoded.
        video = present.video if options.video else []
        audio = present.audio if options.audio else []
        subtitles = present.subtitles if options.subtitles else []
        timeline = Timeline.of(self.container, [*present.video, *present.audio], self.origin_s)
        for stream in present.video:
            self._check_resolution(stream.codec_context.width, stream.codec_context.height)
        width = height = 0
        if present.video:
            width, height = present.video[0].codec_context.width, present.video[0].codec_context.height
        lane_options = frame_share(options, len(video))
        lanes = {
            s.index: VideoLane.open(
                s, lane_options, timeline.media_end_s, self.origin_s, self.container.format.name
            )
            for s in video
        }
        return _Demux(
            present=present,
            lanes=lanes,
            audio={s.index: AudioSink(limits, self._too_long) for s in audio},
            subtitles=subtitles,
            width=width,
            height=height,
            states=self._states(present, video, audio, subtitles),
            timeline=timeline,
            cues=CueCollector(limits, self.origin_s),
        )

    @staticmethod
    def _states(
        present: Selection, video: list[Any], audio: list[Any], subtitles: list[Any]
    ) -> dict[int, StreamState]:
        """A state for every stream demuxed: the decoded ones, then the present ones skipped
        (demuxed only to know where their data ends)."""
        decoded = [(s, "video") for s in video] + [(s, "audio") for s in audio]
        states = {s.index: StreamState(s, kind) for s, kind in decoded}
        states.update({s.index: StreamState(s, "subtitle") for s in subtitles})
        skipped = [(s, "video") for s in present.video] + [(s, "audio") for s in present.audio]
        skipped += [(s, "subtitle") for s in present.subtitles]
        for stream, kind in skipped:
            if stream.index not in states:
                states[stream.index] = StreamState(stream, kind, decode=False)
        return states

    # --- demux --------------------------------------------------------------------------------

    def _demux(self, demux: _Demux) -> None:
        streams = [state.stream for state in demux.states.values()]
        try:
            packets = self.container.demux(streams) if streams else iter(())
            for packet in packets:
                self.clock.check()
                # By the stream the packet decodes with: a damaged matroska file can yield a
                # packet whose stream_index disagrees with it (audio frames in the video path).
                state = demux.states.get(packet.stream.index)
                if state is None:
                    continue  # some demuxers hand out packets of streams not asked for
                end = demux.timeline.note(packet, state.kind)
                if end is not None and end > self.limits.max_duration_s + 1.0:
                    raise self._too_long(end)
                if state.given_up or not state.decode:
                    continue
                if state.kind == "subtitle":
                    demux.cues.add(state, packet)
                elif state.kind == "video":
                    demux.lanes[state.stream.index].feed(state, packet, self._check_resolution)
                else:
                    self._feed_audio(demux, state, packet)
        except av.error.FFmpegError as exc:
            # The demuxer hit unreadable data; what was decoded so far is judged in result()
            # (a truncated upload is refused, a damaged tail of a complete file is tolerated).
            self.undecodable.append(f"container: reading stopped early ({reason(exc)})")

    def _feed_audio(self, demux: _Demux, state: StreamState, packet: Any) -> None:
        sink = demux.audio[state.stream.index]
        for frame in state.decode_packet(packet):
            sink.add(frame, frame_time_s(frame, self.origin_s))

    def _audio_tracks(self, demux: _Demux) -> list[AudioTrack]:
        """Every audio stream decoded that gave samples, in Selection order."""
        tracks = []
        for index, sink in demux.audio.items():
            samples = sink.finish()
            if samples is not None:
                stream = demux.states[index].stream
                codec, lang, default = stream.codec_context.name, language(stream), is_default(stream)
                tracks.append(AudioTrack(index, samples, codec=codec, language=lang, default=default))
        return tracks

    # --- result -------------------------------------------------------------------------------

    def _result(self, demux: _Demux, tracks: list[AudioTrack]) -> SplitMedia:
        states, present, lanes = demux.states, demux.present, demux.lanes
        for state in states.values():
            if state.outputs == 0 and state.errors:
                self.undecodable.append(f"{state.label()}: {state.first_error or 'no decodable data'}")
        decoded_video = [lane for index, lane in lanes.items() if states[index].outputs > 0]
        has_video = bool(decoded_video) if lanes else bool(present.video)
        has_audio = bool(tracks) if demux.audio else bool(present.audio)
        decoded_subtitles = [
            s for s in demux.subtitles if states[s.index].errors == 0 or states[s.index].outputs
        ]
        if not has_audio and not has_video and not decoded_subtitles:
            reasons = "; ".join(self.undecodable) or "no decodable audio, video or subtitle data"
            raise NoUsableStream(f"no usable stream in the media ({reasons}); re-encode it as H.264/AAC mp4")
        self._check_truncation(demux.timeline)

        frames = [frame for lane in lanes.values() for frame in lane.frames()]
        timeline = demux.timeline
        duration_s = timeline.declared_s if timeline.declared_s is not None else timeline.data_end_s
        first = next(iter(lanes.values()), None)
        interval = first.picker.interval_s if first is not None else 0.0
        scene = self.options.strategy is FrameStrategy.SCENE
        info = MediaInfo(
            duration_ms=round(duration_s * 1000),
            container=self._container_name(),
            width=demux.width if has_video else 0,
            height=demux.height if has_video else 0,
            has_audio=has_audio,
            has_video=has_video,
            subtitle_streams=len(decoded_subtitles),
            frames_sampled=len(frames),
            undecodable_streams=tuple(self.undecodable),
            video_codec=present.video[0].codec_context.name if has_video and present.video else "",
            audio_codec=present.audio[0].codec_context.name if has_audio and present.audio else "",
            effective_fps=round(1.0 / interval, 4) if interval and has_video and not scene else 0.0,
            streams=stream_reports(
                self.container,
                present,
                self.options,
                decoded_streams(demux.states, tracks, lanes, decoded_subtitles),
            ),
        )
        self.timings["total"] = self.clock.elapsed_ms()
        return SplitMedia(
            info=info,
            audio_tracks=tuple(tracks),
            frames=frames,
            subtitles=demux.cues.sorted(),
            metadata=self._metadata(),
            timings_ms=self.timings,
            counters={
                "video_frames_decoded": sum(states[index].outputs for index in lanes),
                "video_packets_skipped": sum(lane.packets_skipped for lane in lanes.values()),
            },
        )

    def _check_truncation(self, timeline: Timeline) -> None:
        if not timeline.truncated():
            return
        if timeline.av_declared_s is not None:
            raise TruncatedMedia(
                f"the media is truncated: its audio/video streams declare {timeline.av_declared_s:.1f} s "
                f"but their data ends at {timeline.av_end_s:.1f} s; upload the complete file"
            )
        raise TruncatedMedia(
            f"the media is truncated: the container declares {timeline.declared_s:.1f} s but its data "
            f"ends at {timeline.data_end_s:.1f} s; upload the complete file"
        )

    def _metadata(self) -> dict[str, str]:
        found: dict[str, str] = {}
        for key, value in self.container.metadata.items():
            tag = key.lower()
            if tag in _METADATA_TAGS and value.strip():
                found[tag] = value.strip()[:_METADATA_MAX_CHARS]
        return found
