"""Test audio: espeak-ng speech at known places, silence, tones, and a small WER.

Not a test module (no ``test_`` prefix); the speech tests import it.
"""

from __future__ import annotations

import io
import re
import shutil
import subprocess
from dataclasses import dataclass

import av
import numpy as np

SR = 16_000

# Threats, insults and benign speech, in clear, common words.
SENTENCES = (
    "I know where you live and I am going to hurt you.",
    "You are a stupid and worthless idiot.",
    "Thank you all for coming to the meeting this morning.",
    "If you do not pay me I will burn your house down.",
    "Please remember to bring your lunch to school tomorrow.",
    "Nobody likes you, you ugly loser.",
)

_NUMBERS = {
    "0": "zero", "1": "one", "2": "two", "3": "three", "4": "four", "5": "five",
    "6": "six", "7": "seven", "8": "eight", "9": "nine", "10": "ten",
}  # fmt: skip


def have_espeak() -> bool:
    return shutil.which("espeak-ng") is not None


def speak(text: str, *, words_per_minute: int = 150) -> np.ndarray:
    """espeak-ng speech as 16 kHz mono int16, edge silence trimmed (so onsets are known)."""
    wav = subprocess.run(
        ["espeak-ng", "-v", "en-us", "-s", str(words_per_minute), "--stdout", text],
        capture_output=True,
        check=True,
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


@dataclass(frozen=True)
class Utterance:
    text: str
    start_s: float
    end_s: float


def speech_track(
    sentences: tuple[str, ...] = SENTENCES, *, lead_s: float = 2.0, gap_s: float = 1.2, tail_s: float = 1.5
) -> tuple[np.ndarray, list[Utterance]]:
    """Sentences separated by digital silence; returns int16 audio and where each one is."""
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
    t = np.arange(int(seconds * SR)) / SR
    return (amplitude * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def normalise(text: str) -> list[str]:
    """Lowercase words, punctuation stripped, digits spelled out, for comparing transcripts."""
    words = re.sub(r"[^a-z0-9' ]+", " ", text.lower().replace("-", " ")).split()
    return [_NUMBERS.get(w, w).strip("'") for w in words if w.strip("'")]


def word_error_rate(reference: str, hypothesis: str) -> float:
    """(substitutions + deletions + insertions) / reference words, by edit distance."""
    ref, hyp = normalise(reference), normalise(hypothesis)
    previous = list(range(len(hyp) + 1))
    for i, ref_word in enumerate(ref, start=1):
        current = [i] + [0] * len(hyp)
        for j, hyp_word in enumerate(hyp, start=1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ref_word != hyp_word))
        previous = current
    return previous[-1] / max(1, len(ref))
