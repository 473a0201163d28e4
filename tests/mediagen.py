"""Test media made by the tests: real containers encoded with PyAV, real speech from espeak-ng.

    from tests.mediagen import MediaSpec, Cue, Speech, generate

    clip = generate(MediaSpec(speech=(Speech(0.5, "I know where you live"),)), tmp_path / "a.mp4")
    clip.path, clip.audio_duration_s, clip.speech_spans, clip.spec.subtitles

Every video frame carries its frame number as a row of black/white blocks along the top
(`read_frame_number` reads it back, even after downscaling), over a background whose colour
changes at `scene_changes_s`, with a box moving left to right. Audio is a quiet tone, silence,
or espeak-ng sentences placed at given times. Subtitles are written as real subtitle streams
(mov_text in mp4/mov, subrip or ass in mkv, webvtt in webm). Malformed variants: truncated(),
random_bytes(), ZERO_BYTES, and any valid file saved under the wrong extension.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
import tempfile
import wave
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Literal

import av
import numpy as np

Container = Literal["mp4", "mov", "mkv", "webm"]
AudioKind = Literal["tone", "speech", "silence"]

AUDIO_RATE = 48_000  # what AAC and Opus are encoded at
MARKER_BITS = 12  # frame numbers up to 4095
ZERO_BYTES = b""

_FORMATS = {"mp4": "mp4", "mov": "mov", "mkv": "matroska", "webm": "webm"}
_SUBTITLE_CODECS = {"mp4": "mov_text", "mov": "mov_text", "mkv": "subrip", "webm": "webvtt"}
_SCENE_COLOURS = [(40, 90, 160), (200, 60, 40), (30, 160, 70), (220, 200, 50), (120, 40, 150)]

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


@dataclass(frozen=True)
class Cue:
    """A subtitle cue. `text` may carry ASS markup ({\\i1}, \\N) for the ass codec."""

    start_ms: int
    end_ms: int
    text: str


@dataclass(frozen=True)
class Speech:
    """A sentence spoken by espeak-ng starting at start_s."""

    start_s: float
    text: str


@dataclass(frozen=True)
class MediaSpec:
    container: Container = "mp4"
    width: int = 320
    height: int = 240
    fps: int = 25
    duration_s: float = 4.0
    video: bool = True
    audio: AudioKind | None = "tone"
    speech: tuple[Speech, ...] = ()
    subtitles: tuple[Cue, ...] = ()
    subtitle_codec: str | None = None  # default: mov_text (mp4/mov), subrip (mkv), webvtt (webm)
    metadata: tuple[tuple[str, str], ...] = ()
    gop: int | None = None  # keyframe interval in frames (None: the encoder's default)
    scene_changes_s: tuple[float, ...] = ()
    # Add a second video stream whose packets are garbage (decoding it fails); mkv only.
    broken_video_stream: bool = False
    preset: str = "ultrafast"
    # A noise texture panning across the background: encodes and decodes like camera footage
    # (the flat default compresses unrealistically well); for benchmarks.
    textured: bool = False
    # Font-like attachment streams (mkv), as anime releases carry for their ASS subtitles.
    attachments: int = 0
    # Audio shorter than the video (None: as long as the video).
    audio_duration_s: float | None = None
    # mp4/mov: index (moov) before the data, as streaming-friendly files have it.
    faststart: bool = False
    # Video encoder (default: libx264; libvpx-vp9 in webm). E.g. "libvpx" for VP8.
    video_codec: str | None = None

    def __post_init__(self) -> None:
        if self.speech and self.audio != "speech":
            object.__setattr__(self, "audio", "speech")


@dataclass(frozen=True)
class Generated:
    path: Path
    spec: MediaSpec
    audio_duration_s: float  # length of the audio track as written (0 without audio)
    # (start_s, end_s, text) of each spoken sentence, as placed in the audio.
    speech_spans: tuple[tuple[float, float, str], ...] = field(default=())

    @property
    def data(self) -> bytes:
        return self.path.read_bytes()


# --- drawing ------------------------------------------------------------------------------


def draw_frame(index: int, spec: MediaSpec) -> np.ndarray:
    """RGB frame `index`: frame-number marker on top, scene colour, moving box."""
    h, w = spec.height, spec.width
    t = index / spec.fps
    scene = sum(1 for change in spec.scene_changes_s if t >= change)
    img = np.empty((h, w, 3), dtype=np.uint8)
    img[:] = _SCENE_COLOURS[scene % len(_SCENE_COLOURS)]
    if spec.textured:
        texture = _texture(h, w + 4 * h)
        pan = (index * 4) % (4 * h)
        grain = _grain(h, w)[index % len(_grain(h, w))]
        img[:] = np.clip(img.astype(np.int16) + texture[:, pan : pan + w] + grain, 0, 255).astype(np.uint8)
    marker_h = max(h // 6, 8)
    block_w = w // MARKER_BITS
    for bit in range(MARKER_BITS):
        on = (index >> (MARKER_BITS - 1 - bit)) & 1
        img[:marker_h, bit * block_w : (bit + 1) * block_w] = 255 if on else 0
    box = max(h // 5, 4)
    frames_total = max(int(spec.duration_s * spec.fps), 1)
    x = int((w - box) * (index % frames_total) / frames_total)
    y0 = marker_h + (h - marker_h - box) // 2
    img[y0 : y0 + box, x : x + box] = (250, 250, 250)
    return img


@functools.cache
def _texture(height: int, width: int) -> np.ndarray:
    """Smooth-ish noise (blurred blocks) in [-60, 60], one channel broadcast to RGB."""
    rng = np.random.default_rng(42)
    coarse = rng.integers(-60, 61, size=(height // 8 + 1, width // 8 + 1), dtype=np.int16)
    fine = rng.integers(-12, 13, size=(height, width), dtype=np.int16)
    blocks = np.repeat(np.repeat(coarse, 8, axis=0), 8, axis=1)[:height, :width]
    return (blocks + fine)[:, :, None]


@functools.cache
def _grain(height: int, width: int) -> list[np.ndarray]:
    """A few frames of sensor-like grain, cycled: detail no motion vector predicts."""
    rng = np.random.default_rng(43)
    return [rng.integers(-8, 9, size=(height, width, 1), dtype=np.int16) for _ in range(7)]


def read_frame_number(image: np.ndarray) -> int:
    """The frame number drawn by draw_frame, read from a (possibly downscaled) RGB frame."""
    h, w = image.shape[:2]
    marker_h = max(h // 6, 2)
    block_w = w / MARKER_BITS
    gray = image[: marker_h * 3 // 4, :, :].mean(axis=2)
    value = 0
    for bit in range(MARKER_BITS):
        x0 = int(bit * block_w + block_w * 0.25)
        x1 = max(int(bit * block_w + block_w * 0.75), x0 + 1)
        value = (value << 1) | int(gray[:, x0:x1].mean() > 127)
    return value


# --- audio --------------------------------------------------------------------------------


def espeak(text: str, *, rate: int = AUDIO_RATE, words_per_minute: int = 150) -> np.ndarray:
    """Speech for `text` from espeak-ng, as float32 mono at `rate`."""
    if shutil.which("espeak-ng") is None:
        raise RuntimeError("espeak-ng is not installed (apt-get install espeak-ng); it speaks the test audio")
    with tempfile.TemporaryDirectory() as tmp:
        wav_path = Path(tmp) / "speech.wav"
        subprocess.run(
            ["espeak-ng", "-s", str(words_per_minute), "-w", str(wav_path), text],
            check=True,
            capture_output=True,
            timeout=60,
        )
        with wave.open(str(wav_path)) as wav:
            source_rate = wav.getframerate()
            pcm = np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16)
    return _resample(pcm.astype(np.float32) / 32768.0, source_rate, rate)


def _resample(samples: np.ndarray, source_rate: int, rate: int) -> np.ndarray:
    if source_rate == rate:
        return samples.astype(np.float32)
    frame = av.AudioFrame.from_ndarray(samples.astype(np.float32)[None, :], format="flt", layout="mono")
    frame.sample_rate = source_rate
    resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
    chunks = [out.to_ndarray().reshape(-1) for out in resampler.resample(frame)]
    chunks += [out.to_ndarray().reshape(-1) for out in resampler.resample(None)]
    return np.concatenate(chunks).astype(np.float32)


def make_audio(spec: MediaSpec) -> tuple[np.ndarray, tuple[tuple[float, float, str], ...]]:
    n = round((spec.audio_duration_s or spec.duration_s) * AUDIO_RATE)
    if spec.audio == "tone":
        t = np.arange(n) / AUDIO_RATE
        return (0.2 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32), ()
    signal = np.zeros(n, dtype=np.float32)
    spans = []
    for sentence in spec.speech:
        voice = espeak(sentence.text)
        start = round(sentence.start_s * AUDIO_RATE)
        if start + len(voice) > n:
            raise ValueError(
                f"speech {sentence.text!r} at {sentence.start_s}s lasts {len(voice) / AUDIO_RATE:.2f}s "
                f"and does not fit in {spec.duration_s}s; lengthen duration_s"
            )
        signal[start : start + len(voice)] += voice
        spans.append((sentence.start_s, sentence.start_s + len(voice) / AUDIO_RATE, sentence.text))
    return np.clip(signal, -1.0, 1.0), tuple(spans)


# --- muxing ---------------------------------------------------------------------------------


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
        webm = spec.container == "webm"
        video = None
        if spec.video:
            codec = spec.video_codec or ("libvpx-vp9" if webm else "libx264")
            video = out.add_stream(codec, rate=spec.fps)
            video.width, video.height, video.pix_fmt = spec.width, spec.height, "yuv420p"
            x264 = codec == "libx264"
            options = {"preset": spec.preset} if x264 else {"deadline": "realtime", "cpu-used": "8"}
            if spec.gop:
                options["g"] = str(spec.gop)
                if x264:
                    options["x264-params"] = f"keyint={spec.gop}:min-keyint={spec.gop}:scenecut=0"
            video.options = options
        audio_stream = None
        if spec.audio is not None:
            audio_stream = out.add_stream("libopus" if webm else "aac", rate=AUDIO_RATE)
            audio_stream.layout = "mono"
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
            for order, cue in enumerate(spec.subtitles):
                event = f"{order},0,Default,,0,0,0,,{cue.text}".encode()
                subtitle_set = av.subtitles.subtitle.SubtitleSet.create(
                    text=event, start=0, end=cue.end_ms - cue.start_ms, pts=cue.start_ms
                )
                packet = subtitle.codec_context.encode_subtitle(subtitle_set)
                packet.stream = subtitle
                packet.time_base = Fraction(1, 1000)
                packet.pts = packet.dts = cue.start_ms
                packet.duration = cue.end_ms - cue.start_ms
                out.mux(packet)

        if video is not None:
            for index in range(round(spec.duration_s * spec.fps)):
                frame = av.VideoFrame.from_ndarray(draw_frame(index, spec), format="rgb24")
                frame.pts = index
                frame.time_base = Fraction(1, spec.fps)
                out.mux(video.encode(frame))
            out.mux(video.encode(None))

        if broken is not None:
            rng = np.random.default_rng(7)
            for index in range(round(spec.duration_s * spec.fps)):
                packet = av.Packet(rng.integers(0, 256, 400, dtype=np.uint8).tobytes())
                packet.stream = broken
                packet.time_base = Fraction(1, spec.fps)
                packet.pts = packet.dts = index
                packet.duration = 1
                packet.is_keyframe = True
                out.mux(packet)

        audio_duration = 0.0
        spans: tuple[tuple[float, float, str], ...] = ()
        if audio_stream is not None:
            samples, spans = make_audio(spec)
            audio_duration = len(samples) / AUDIO_RATE
            step = 960
            for offset in range(0, len(samples), step):
                chunk = np.ascontiguousarray(samples[offset : offset + step][None, :])
                frame = av.AudioFrame.from_ndarray(chunk, format="flt", layout="mono")
                frame.sample_rate = AUDIO_RATE
                frame.pts = offset
                frame.time_base = Fraction(1, AUDIO_RATE)
                out.mux(audio_stream.encode(frame))
            out.mux(audio_stream.encode(None))
    finally:
        out.close()
    return Generated(path=path, spec=spec, audio_duration_s=audio_duration, speech_spans=spans)


# --- malformed --------------------------------------------------------------------------------


def truncated(data: bytes, fraction: float = 0.5) -> bytes:
    """The first `fraction` of a valid file (an interrupted upload)."""
    return data[: int(len(data) * fraction)]


def random_bytes(size: int = 64 * 1024, seed: int = 1) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes()


def save(data: bytes, path: Path) -> Path:
    """Write bytes under any name (e.g. a webm saved as .mp4, random bytes as .mkv)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


__all__ = [
    "ASS_HEADER",
    "AUDIO_RATE",
    "ZERO_BYTES",
    "Cue",
    "Generated",
    "MediaSpec",
    "Speech",
    "draw_frame",
    "espeak",
    "generate",
    "random_bytes",
    "read_frame_number",
    "save",
    "truncated",
]
