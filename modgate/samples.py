"""Sample videos for `modgate demo` and the end-to-end tests: real speech, real subtitles.

An MP4 (H.264 video, AAC audio, a mov_text subtitle track) whose audio is espeak-ng speaking
given sentences at given times. The demo's sample says a threat while its subtitle stays
benign, so only the AUDIO modality can catch it — the point of a multimodal moderator.

(tests/mediagen.py is the splitter's richer generator; this is the minimal subset that
non-test code may use.)
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import wave
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

AUDIO_RATE = 48_000
FPS = 10
WIDTH, HEIGHT = 320, 240

# Subtitle encoders in FFmpeg convert from ASS events, so they need an ASS header.
_ASS_HEADER = (
    "[Script Info]\nScriptType: v4.00+\nPlayResX: 384\nPlayResY: 288\n\n[V4+ Styles]\n"
    "Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, "
    "Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, "
    "Alignment, MarginL, MarginR, MarginV, Encoding\n"
    "Style: Default,Arial,16,&Hffffff,&Hffffff,&H0,&H0,0,0,0,0,100,100,0,0,1,1,0,2,10,10,10,0\n\n"
    "[Events]\nFormat: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\n"
)


@dataclass(frozen=True)
class Line:
    """A sentence spoken by espeak-ng starting at start_s."""

    start_s: float
    text: str


@dataclass(frozen=True)
class Subtitle:
    start_ms: int
    end_ms: int
    text: str


@dataclass(frozen=True)
class Sample:
    path: Path
    duration_s: float
    # (start_s, end_s, text) of each spoken sentence as placed in the audio.
    spoken: tuple[tuple[float, float, str], ...] = field(default=())
    subtitles: tuple[Subtitle, ...] = ()


GREETING = Line(0.5, "Hi everyone, thanks for watching my channel.")
THREAT = Line(4.5, "I know where you live, and I am going to hurt you.")
THREAT_LINES = (GREETING, THREAT)
THREAT_SUBTITLES = (Subtitle(0, 4000, "Welcome back to my cooking channel!"),)
BENIGN_LINES = (GREETING, Line(4.5, "Today we are baking bread with warm water and flour."))
BENIGN_SUBTITLES = (Subtitle(0, 4000, "Welcome back to my cooking channel!"),)


def espeak(text: str, *, rate: int = AUDIO_RATE, words_per_minute: int = 150) -> np.ndarray:
    """`text` spoken by espeak-ng as float32 mono samples at `rate`."""
    if shutil.which("espeak-ng") is None:
        raise RuntimeError(
            "espeak-ng is not installed; it speaks the sample video "
            "(apt-get install espeak-ng, or `make install`)"
        )
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
    samples = pcm.astype(np.float32) / 32768.0
    if source_rate == rate:
        return samples
    frame = av.AudioFrame.from_ndarray(samples[None, :], format="flt", layout="mono")
    frame.sample_rate = source_rate
    resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
    chunks = [out.to_ndarray().reshape(-1) for out in resampler.resample(frame)]
    chunks += [out.to_ndarray().reshape(-1) for out in resampler.resample(None)]
    return np.concatenate(chunks).astype(np.float32)


def _frame(index: int, duration_s: float) -> np.ndarray:
    """A calm scene: a soft background with a box drifting left to right."""
    img = np.empty((HEIGHT, WIDTH, 3), dtype=np.uint8)
    img[:] = (70, 120, 170)
    box = HEIGHT // 5
    total = max(1, round(duration_s * FPS))
    x = int((WIDTH - box) * index / total)
    y = (HEIGHT - box) // 2
    img[y : y + box, x : x + box] = (240, 230, 200)
    return img


def make_video(
    path: Path,
    lines: tuple[Line, ...] = (),
    subtitles: tuple[Subtitle, ...] = (),
    *,
    duration_s: float | None = None,
    title: str = "",
    audio_track: bool = True,
) -> Sample:
    """Encode an MP4 with `lines` spoken at their times and `subtitles` as a mov_text track
    (no audio stream at all when `audio_track` is false)."""
    if lines and not audio_track:
        raise ValueError("spoken lines need an audio track")
    voices = [(line, espeak(line.text)) for line in lines]
    needed = max((line.start_s + len(v) / AUDIO_RATE for line, v in voices), default=2.0) + 0.5
    duration = max(duration_s or 0.0, needed, max((s.end_ms / 1000 for s in subtitles), default=0.0))
    audio = np.zeros(round(duration * AUDIO_RATE), dtype=np.float32)
    spoken = []
    for line, voice in voices:
        start = round(line.start_s * AUDIO_RATE)
        audio[start : start + len(voice)] += voice
        spoken.append((line.start_s, line.start_s + len(voice) / AUDIO_RATE, line.text))
    audio = np.clip(audio, -1.0, 1.0)

    path.parent.mkdir(parents=True, exist_ok=True)
    out = av.open(str(path), mode="w", format="mp4")
    try:
        if title:
            out.metadata["title"] = title
        video = out.add_stream("libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        video.options = {"preset": "ultrafast"}
        sound = None
        if audio_track:
            sound = out.add_stream("aac", rate=AUDIO_RATE)
            sound.layout = "mono"
        text_track = None
        if subtitles:
            text_track = out.add_stream("mov_text")
            text_track.codec_context.subtitle_header = _ASS_HEADER.encode()

        if text_track is not None:
            for order, cue in enumerate(subtitles):
                event = f"{order},0,Default,,0,0,0,,{cue.text}".encode()
                subtitle_set = av.subtitles.subtitle.SubtitleSet.create(
                    text=event, start=0, end=cue.end_ms - cue.start_ms, pts=cue.start_ms
                )
                packet = text_track.codec_context.encode_subtitle(subtitle_set)
                packet.stream = text_track
                packet.time_base = Fraction(1, 1000)
                packet.pts = packet.dts = cue.start_ms
                packet.duration = cue.end_ms - cue.start_ms
                out.mux(packet)

        for index in range(round(duration * FPS)):
            frame = av.VideoFrame.from_ndarray(_frame(index, duration), format="rgb24")
            frame.pts = index
            frame.time_base = Fraction(1, FPS)
            out.mux(video.encode(frame))
        out.mux(video.encode(None))

        step = 1024
        for offset in range(0, len(audio) if sound is not None else 0, step):
            chunk = np.ascontiguousarray(audio[offset : offset + step][None, :])
            frame = av.AudioFrame.from_ndarray(chunk, format="flt", layout="mono")
            frame.sample_rate = AUDIO_RATE
            frame.pts = offset
            frame.time_base = Fraction(1, AUDIO_RATE)
            out.mux(sound.encode(frame))
        if sound is not None:
            out.mux(sound.encode(None))
    finally:
        out.close()
    return Sample(path=path, duration_s=duration, spoken=tuple(spoken), subtitles=tuple(subtitles))


def threat_video(path: Path) -> Sample:
    """Speech that makes a threat; a benign subtitle. Should come back REVIEW or BLOCK via AUDIO."""
    return make_video(path, THREAT_LINES, THREAT_SUBTITLES)


def benign_video(path: Path) -> Sample:
    """Benign speech and subtitle. Should come back ALLOW."""
    return make_video(path, BENIGN_LINES, BENIGN_SUBTITLES)
