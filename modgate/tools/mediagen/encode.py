"""Encoding a :class:`~modgate.tools.mediagen.spec.MediaSpec` into a real container with PyAV."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from modgate.tools.mediagen.audio import make_audio
from modgate.tools.mediagen.frames import draw_frame
from modgate.tools.mediagen.spec import AUDIO_RATE, Cue, Generated, MediaSpec

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
        video = _add_video(out, spec) if spec.video else None
        audio = None
        if spec.audio is not None:
            audio = out.add_stream("libopus" if spec.container == "webm" else "aac", rate=AUDIO_RATE)
            audio.layout = "mono"
        subtitle = None
        if spec.subtitles:
            subtitle = out.add_stream(spec.subtitle_codec or _SUBTITLE_CODECS[spec.container])
            subtitle.codec_context.subtitle_header = ASS_HEADER.encode()
        broken = None
        if spec.broken_video_stream:
            if spec.container not in ("mkv", "webm"):
                raise ValueError("broken_video_stream needs an mkv or webm container")
            broken = out.add_mux_stream("vp8", width=spec.width, height=spec.height)

        if subtitle is not None:
            mux_subtitles(out, subtitle, spec.subtitles)
        if video is not None:
            _mux_video(out, video, spec)
        if broken is not None:
            _mux_garbage(out, broken, spec)
        audio_duration = 0.0
        spans: tuple[tuple[float, float, str], ...] = ()
        if audio is not None:
            samples, spans = make_audio(spec)
            audio_duration = len(samples) / AUDIO_RATE
            _mux_audio(out, audio, samples)
    finally:
        out.close()
    return Generated(path=path, spec=spec, audio_duration_s=audio_duration, speech_spans=spans)


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
