"""Whisper base (multilingual, reassembled from two packages) on both engines: language detection.

Slow (a second and third model load plus multilingual decoding); run with ``pytest -m slow``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from modgate.tools.mediagen import SENTENCES, Utterance
from modgate.tools.wer import word_error_rate
from services.speech.audio import AudioError, PcmAudio
from services.speech.pipeline import build_transcriber
from tests.services.speech.conftest import settings
from tests.services.speech.test_speech_transcription import assert_segments_inside_speech, transcript

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("engine", ["faster-whisper", "openai-whisper"])
def test_base_detects_english_and_transcribes(
    engine: str, tmp_path_factory: pytest.TempPathFactory, spoken_track: tuple[np.ndarray, list[Utterance]]
) -> None:
    cache: Path = tmp_path_factory.getbasetemp() / "speech-cache"
    transcriber = build_transcriber(settings(engine=engine, model="base", cache_dir=cache))
    assert transcriber.engine.multilingual
    assert transcriber.model.name == "whisper-base"

    audio, spoken = spoken_track
    result = transcriber.transcribe(PcmAudio.from_array(audio))  # no hint: detected
    assert result.language == "en"
    assert result.language_probability > 0.5
    wer = word_error_rate(" ".join(SENTENCES), transcript(result))
    assert wer <= 0.15, f"WER {wer:.1%}: {transcript(result)!r}"
    assert_segments_inside_speech(result, spoken)

    assert transcriber.check_language("DE") == "de"  # a hint the multilingual model accepts
    with pytest.raises(AudioError, match="ISO 639-1"):
        transcriber.check_language("klingon")
