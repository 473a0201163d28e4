"""Chunks of one request decoded side by side: same transcript, shorter wall time."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from modgate.tools.mediagen import SENTENCES, speech_track
from services.speech.audio import PcmAudio
from services.speech.engines import ChunkTranscript, SpeechEngine
from services.speech.pipeline import Transcriber, build_transcriber
from tests.services.speech.conftest import settings

pytestmark = pytest.mark.timeout(180)


@pytest.mark.parametrize(
    ("threads", "chunk_workers", "expected"),
    [(2, 0, (2, 1)), (1, 0, (1, 1)), (4, 2, (2, 2)), (2, 8, (2, 1)), (6, 4, (4, 1)), (2, 1, (1, 2))],
)
def test_threads_are_spread_over_chunks(threads: int, chunk_workers: int, expected: tuple[int, int]) -> None:
    assert settings(threads=threads, chunk_workers=chunk_workers).chunk_parallelism() == expected


class TimingEngine:
    """The real engine, recording when each call ran and on which thread."""

    def __init__(self, engine: SpeechEngine) -> None:
        self.inner = engine
        self.name, self.device = engine.name, engine.device
        self.multilingual, self.languages = engine.multilingual, engine.languages
        self.parallel = engine.parallel
        self.calls: list[tuple[float, float, int]] = []
        self._lock = threading.Lock()

    def transcribe(self, audio: np.ndarray, language: str | None) -> ChunkTranscript:
        started = time.monotonic()
        result = self.inner.transcribe(audio, language)
        with self._lock:
            self.calls.append((started, time.monotonic(), threading.get_ident()))
        return result


def test_parallel_chunks_give_the_sequential_transcript() -> None:
    audio = PcmAudio.from_array(speech_track(SENTENCES * 2, lead_s=2.0, gap_s=1.5, tail_s=2.0)[0])
    sequential = build_transcriber(settings(threads=1))  # one chunk at a time, one thread each
    parallel = build_transcriber(settings(threads=2, chunk_workers=2))  # two at once, one thread each
    assert (sequential.engine.parallel, parallel.engine.parallel) == (1, 2)
    timing = TimingEngine(parallel.engine)
    traced = Transcriber(timing, parallel.vad, parallel.model)

    expected = sequential.transcribe(audio)
    result = traced.transcribe(audio)

    assert len(timing.calls) == 2  # > 30 s of speech: two Whisper windows
    (_, end_a, thread_a), (start_b, _, thread_b) = sorted(timing.calls)
    assert thread_a != thread_b and start_b < end_a  # they ran side by side
    assert [(s.text, s.start_s, s.end_s) for s in result.segments] == [
        (s.text, s.start_s, s.end_s) for s in expected.segments
    ]
