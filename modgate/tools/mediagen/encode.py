"""Encoding a :class:`~modgate.tools.mediagen.spec.MediaSpec` into a real container with PyAV."""

from __future__ import annotations

import dataclasses
import io
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from modgate.tools.mediagen.audio import make_audio
from modgate.tools.mediagen.frames import draw_frame
from modgate.tools.mediagen.spec import AUDIO_RATE, AudioTrackSpec, Cue, Generated, MediaSpec, VideoStreamSpec

_FORMATS = {"mp4": "mp4", "mov": "mov", "mkv": "matroska", "webm": "webm"}
_SUBTITLE_CODECS = {"mp4": "mov_text", "mov": "mov_text", "mkv": "subrip", "webm": "webvtt"}

# Subtitle encoders in FFmpeg convert from ASS events, so they need an ASS header.
ASS_HEADER = """[Script Info]
ScriptType: v4.00+
PlayResX: 384
PlayResY: 288

[V4+ Styles]
Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, \
Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, \
Alignment, MarginL, MarginR, MarginV, Encoding
Style: Default,Arial,16,&Hffffff,&Hffffff,&H0,&H0,0,0,0,0,100,100,0,0,1,1,0,2,10,10,10,0

[Events]
Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text
"""


@dataclass
class _Streams:
    """The output streams of one generated file (None / empty: not in the spec)."""

    video: Any | None
    audio: Any | None
    more_audio: list[tuple[Any, AudioTrackSpec]]
    more_video: list[tuple[Any, VideoStreamSpec]]
    cover: Any | None
    subtitle: Any | None
    broken: Any | None


def generate(spec: MediaSpec, path: Path) -> Generated:
    """Encode `spec` into `path` (its extension is not consulted: spec.container decides)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    options = {"movflags": "faststart"} if spec.faststart else {}
    out = av.open(str(path), mode="w", format=_FORMATS[spec.container], options=options)
    try:
        for key, value in spec.metadata:
            out.metadata[key] = value
        for i in range(spec.attachments):
            out.add_attachment(f"font{i}.ttf", "application/x-truetype-font", b"\0\1\0\0" + bytes(64))
        streams = _add_streams(out, spec)
        _mux_pictures(out, streams, spec)
        audio_duration, spans, more_spans = _mux_sound(out, streams, spec)
    finally:
        out.close()
    return Generated(
        path=path,
        spec=spec,
        audio_duration_s=audio_duration,
        speech_spans=spans,
        more_speech_spans=more_spans,
    )


def _add_streams(out: Any, spec: MediaSpec) -> _Streams:
    """Every stream, in stream-index order: video, audio, more audio, more video, cover art,
    subtitles, the broken video stream."""
    video = _add_video(out, spec) if spec.video else None
    audio = _add_audio(out, spec, spec.audio_language, spec.audio_default) if spec.audio is not None else None
    more_audio = [(_add_audio(out, spec, t.language, t.default), t) for t in spec.more_audio]
    more_video = [(_add_video(out, _picture(spec, v)), v) for v in spec.more_video]
    cover = _add_cover_art(out, spec) if spec.cover_art else None
    subtitle = None
    if spec.subtitles:
        subtitle = out.add_stream(spec.subtitle_codec or _SUBTITLE_CODECS[spec.container])
        subtitle.codec_context.subtitle_header = ASS_HEADER.encode()
    broken = None
    if spec.broken_video_stream:
        if spec.container not in ("mkv", "webm"):
            raise ValueError("broken_video_stream needs an mkv or webm container")
        broken = out.add_mux_stream("vp8", width=spec.width, height=spec.height)
    return _Streams(video, audio, more_audio, more_video, cover, subtitle, broken)


def _mux_pictures(out: Any, streams: _Streams, spec: MediaSpec) -> None:
    """Subtitles, every video stream, cover art and garbage."""
    if streams.subtitle is not None:
        mux_subtitles(out, streams.subtitle, spec.subtitles)
    if streams.video is not None:
        _mux_video(out, streams.video, spec)
    for stream, extra in streams.more_video:
        _mux_video(out, stream, _picture(spec, extra))
    if streams.cover is not None:
        _mux_cover_art(out, streams.cover)
    if streams.broken is not None:
        _mux_garbage(out, streams.broken, spec)


Spans = tuple[tuple[float, float, str], ...]


def _mux_sound(out: Any, streams: _Streams, spec: MediaSpec) -> tuple[float, Spans, tuple[Spans, ...]]:
    """Every audio track; the main one's length and speech, and the speech of the others."""
    audio_duration = 0.0
    spans: Spans = ()
    if streams.audio is not None:
        samples, spans = make_audio(spec)
        audio_duration = len(samples) / AUDIO_RATE
        _mux_audio(out, streams.audio, samples)
    more_spans = []
    for stream, track in streams.more_audio:
        samples, track_spans = make_audio(dataclasses.replace(spec, audio=track.audio, speech=track.speech))
        more_spans.append(track_spans)
        _mux_audio(out, stream, samples)
    return audio_duration, spans, tuple(more_spans)


def _add_audio(out: Any, spec: MediaSpec, language: str, default: bool | None) -> Any:
    audio = out.add_stream("libopus" if spec.container == "webm" else "aac", rate=AUDIO_RATE)
    audio.layout = "mono"
    if language:
        audio.metadata["language"] = language
    if default is not None:
        audio.disposition = av.stream.Disposition.default if default else av.stream.Disposition(0)
    return audio


def _picture(spec: MediaSpec, extra: VideoStreamSpec) -> MediaSpec:
    """The spec an extra video stream is drawn and encoded from."""
    return dataclasses.replace(
        spec, width=extra.width, height=extra.height, scene_changes_s=extra.scene_changes_s
    )


def _add_cover_art(out: Any, spec: MediaSpec) -> Any | None:
    """A PNG cover: an attached-picture stream in mp4/mov, an image attachment in mkv/webm
    (which FFmpeg reads back as an attached-picture stream); None when written as attachment."""
    png = _cover_png()
    if spec.container in ("mkv", "webm"):
        out.add_attachment("cover.png", "image/png", png)
        return None
    cover = out.add_stream("png", rate=1)
    cover.width = cover.height = 64
    cover.pix_fmt = "rgb24"
    cover.disposition = av.stream.Disposition.attached_pic
    return cover


def _cover_png() -> bytes:
    frame = av.VideoFrame.from_ndarray(np.full((64, 64, 3), 200, dtype=np.uint8), format="rgb24")
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="image2pipe") as image:
        stream = image.add_stream("png", rate=1)
        stream.width = stream.height = 64
        stream.pix_fmt = "rgb24"
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            image.mux(packet)
    return buffer.getvalue()


def _mux_cover_art(out: Any, stream: Any) -> None:
    packet = av.Packet(_cover_png())
    packet.stream = stream
    packet.time_base = Fraction(1, 1)
    packet.pts = packet.dts = 0
    packet.is_keyframe = True
    out.mux(packet)


def _add_video(out: Any, spec: MediaSpec) -> Any:
    codec = spec.video_codec or ("libvpx-vp9" if spec.container == "webm" else "libx264")
    video = out.add_stream(codec, rate=spec.fps)
    video.width, video.height, video.pix_fmt = spec.width, spec.height, "yuv420p"
    x264 = codec == "libx264"
    options = {"preset": spec.preset} if x264 else {"deadline": "realtime", "cpu-used": "8"}
    if spec.gop:
        options["g"] = str(spec.gop)
        if x264:
            options["x264-params"] = f"keyint={spec.gop}:min-keyint={spec.gop}:scenecut=0"
    video.options = options
    return video


def mux_subtitles(out: Any, stream: Any, cues: tuple[Cue, ...]) -> None:
    """Write `cues` to a subtitle stream whose codec context has an ASS header."""
    for order, cue in enumerate(cues):
        event = f"{order},0,Default,,0,0,0,,{cue.text}".encode()
        subtitle_set = av.subtitles.subtitle.SubtitleSet.create(
            text=event, start=0, end=cue.end_ms - cue.start_ms, pts=cue.start_ms
        )
        packet = stream.codec_context.encode_subtitle(subtitle_set)
        packet.stream = stream
        packet.time_base = Fraction(1, 1000)
        packet.pts = packet.dts = cue.start_ms
        packet.duration = cue.end_ms - cue.start_ms
        out.mux(packet)


def _mux_video(out: Any, stream: Any, spec: MediaSpec) -> None:
    for index in range(round(spec.duration_s * spec.fps)):
        frame = av.VideoFrame.from_ndarray(draw_frame(index, spec), format="rgb24")
        frame.pts = index
        frame.time_base = Fraction(1, spec.fps)
        out.mux(stream.encode(frame))
    out.mux(stream.encode(None))


def _mux_garbage(out: Any, stream: Any, spec: MediaSpec) -> None:
    """Keyframe packets of random bytes: a video stream that fails to decode."""
    rng = np.random.default_rng(7)
    for index in range(round(spec.duration_s * spec.fps)):
        packet = av.Packet(rng.integers(0, 256, 400, dtype=np.uint8).tobytes())
        packet.stream = stream
        packet.time_base = Fraction(1, spec.fps)
        packet.pts = packet.dts = index
        packet.duration = 1
        packet.is_keyframe = True
        out.mux(packet)


def _mux_audio(out: Any, stream: Any, samples: np.ndarray) -> None:
    step = 960
    for offset in range(0, len(samples), step):
        chunk = np.ascontiguousarray(samples[offset : offset + step][None, :])
        frame = av.AudioFrame.from_ndarray(chunk, format="flt", layout="mono")
        frame.sample_rate = AUDIO_RATE
        frame.pts = offset
        frame.time_base = Fraction(1, AUDIO_RATE)
        out.mux(stream.encode(frame))
    out.mux(stream.encode(None))
