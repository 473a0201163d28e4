"""Speech-to-text engines behind one small interface, chosen by MODGATE_SPEECH_ENGINE.

An engine transcribes one chunk of at most ~30 s of (already voice-filtered) 16 kHz float32
audio and returns segments with times relative to that chunk; everything about requests,
windows and timelines lives in :mod:`services.speech.pipeline`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from services.speech.config import SpeechSettings
from services.speech.models import ResolvedWeights
from services.speech.sentences import Word


@dataclass(frozen=True)
class ChunkSegment:
    text: str
    start_s: float  # relative to the chunk
    end_s: float
    avg_logprob: float
    no_speech_prob: float
    # Each word with its (start_s, end_s) from cross-attention alignment; far tighter than the
    # segment's own timestamp tokens, which can be off by a second around pauses.
    words: tuple[Word, ...] = ()


@dataclass(frozen=True)
class ChunkTranscript:
    segments: list[ChunkSegment]
    language: str
    language_probability: float


class SpeechEngine(Protocol):
    name: str  # reported as ModelInfo.engine, e.g. "faster-whisper/int8"
    device: str  # "cpu" | "cuda"
    multilingual: bool
    languages: frozenset[str]  # language codes accepted as a hint
    # How many transcribe() calls may run at once from different threads (1: one at a time).
    parallel: int

    def transcribe(self, audio: np.ndarray, language: str | None) -> ChunkTranscript:
        """Transcribe float32 16 kHz mono audio; ``language=None`` detects it."""
        ...


class EngineError(RuntimeError):
    """An engine/weights combination that cannot work; the message says what to change."""


def build_engine(settings: SpeechSettings, weights: ResolvedWeights) -> SpeechEngine:
    if settings.engine == "faster-whisper":
        from services.speech.engines.faster import FasterWhisperEngine

        return FasterWhisperEngine(settings, weights)
    from services.speech.engines.openai import OpenAIWhisperEngine

    return OpenAIWhisperEngine(settings, weights)
