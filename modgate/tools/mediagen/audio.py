"""Audio: espeak-ng speech (for a container's track, or as a 16 kHz speech-service input),
tones and silence.

Two speech forms, each what its users were tuned with: :func:`espeak` gives float32 mono at
the container's rate (48 kHz), the default voice, as placed in generated videos;
:func:`speak` gives 16 kHz int16 mono in the en-us voice with its edge silence trimmed (so
an utterance's onset is known), which :func:`speech_track` strings together for the speech
service's own tests and benchmarks.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from modgate.tools.mediagen.spec import AUDIO_RATE, MediaSpec

SR = 16_000  # the speech service's input rate

# Threats, insults and benign speech, in clear, common words.
SENTENCES = (
    "I know where you live and I am going to hurt you.",
    "You are a stupid and worthless idiot.",
    "Thank you all for coming to the meeting this morning.",
    "If you do not pay me I will burn your house down.",
    "Please remember to bring your lunch to school tomorrow.",
    "Nobody likes you, you ugly loser.",
)


@dataclass(frozen=True)
class Utterance:
    text: str
    start_s: float
    end_s: float


def have_espeak() -> bool:
    return shutil.which("espeak-ng") is not None


def _require_espeak() -> None:
    if not have_espeak():
        raise RuntimeError(
            "espeak-ng is not installed; it speaks the generated media "
            "(apt-get install espeak-ng, or `make install`)"
        )


def espeak(text: str, *, rate: int = AUDIO_RATE, words_per_minute: int = 150, voice: str = "") -> np.ndarray:
    """Speech for `text` from espeak-ng (`voice`: an espeak-ng voice such as "es", "pt-br", "fr";
    default its English), as float32 mono at `rate`."""
    _require_espeak()
    with tempfile.TemporaryDirectory() as tmp:
        wav_path = Path(tmp) / "speech.wav"
        subprocess.run(
            [
                "espeak-ng",
                *(["-v", voice] if voice else []),
                "-s",
                str(words_per_minute),
                "-w",
                str(wav_path),
                text,
            ],
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
        voice = espeak(sentence.text, voice=sentence.voice)
        start = round(sentence.start_s * AUDIO_RATE)
        if start + len(voice) > n:
            raise ValueError(
                f"speech {sentence.text!r} at {sentence.start_s}s lasts {len(voice) / AUDIO_RATE:.2f}s "
                f"and does not fit in {spec.duration_s}s; lengthen duration_s"
            )
        signal[start : start + len(voice)] += voice
        spans.append((sentence.start_s, sentence.start_s + len(voice) / AUDIO_RATE, sentence.text))
    return np.clip(signal, -1.0, 1.0), tuple(spans)


def speak(text: str, *, words_per_minute: int = 150) -> np.ndarray:
    """espeak-ng speech as 16 kHz mono int16, edge silence trimmed (so onsets are known)."""
    _require_espeak()
    wav = subprocess.run(
        ["espeak-ng", "-v", "en-us", "-s", str(words_per_minute), "--stdout", text],
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout
    resampler = av.AudioResampler(format="s16", layout="mono", rate=SR)
    chunks: list[np.ndarray] = []
    with av.open(io.BytesIO(wav)) as container:
        for frame in container.decode(audio=0):
            chunks.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(frame))
    chunks.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(None))
    audio = np.concatenate(chunks).astype(np.int16)
    loud = np.flatnonzero(np.abs(audio.astype(np.int32)) > 300)
    return audio[loud[0] : loud[-1] + 1]


def speech_track(
    sentences: tuple[str, ...] = SENTENCES, *, lead_s: float = 2.0, gap_s: float = 1.2, tail_s: float = 1.5
) -> tuple[np.ndarray, list[Utterance]]:
    """Sentences separated by digital silence at 16 kHz; returns int16 audio and where each one is."""
    parts = [np.zeros(int(lead_s * SR), np.int16)]
    spoken: list[Utterance] = []
    cursor = parts[0].shape[0]
    for i, sentence in enumerate(sentences):
        clip = speak(sentence)
        spoken.append(Utterance(sentence, cursor / SR, (cursor + clip.shape[0]) / SR))
        gap = np.zeros(int((gap_s if i < len(sentences) - 1 else tail_s) * SR), np.int16)
        parts += [clip, gap]
        cursor += clip.shape[0] + gap.shape[0]
    return np.concatenate(parts), spoken


def tone(seconds: float, *, hz: float = 440.0, amplitude: float = 0.3) -> np.ndarray:
    """A sine tone at 16 kHz, float32."""
    t = np.arange(int(seconds * SR)) / SR
    return (amplitude * np.sin(2 * np.pi * hz * t)).astype(np.float32)
