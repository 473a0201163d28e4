"""The language router: English audio stays on tiny.en, other speech reaches Whisper base.

Real models (tiny.en + base from their packages), real espeak-ng speech.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from modgate.tools.mediagen import have_espeak
from modgate.tools.mediagen.audio import espeak
from services.speech.audio import PcmAudio
from services.speech.pipeline import build_transcriber
from services.speech.routing import RoutedTranscriber
from tests.services.speech.conftest import settings

pytestmark = pytest.mark.skipif(not have_espeak(), reason="espeak-ng is not installed")


@pytest.fixture(scope="module")
def router(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RoutedTranscriber]:
    built = build_transcriber(
        settings(multilingual_model="base", cache_dir=tmp_path_factory.mktemp("whisper-cache"))
    )
    assert isinstance(built, RoutedTranscriber)
    yield built


def _pcm(text: str, voice: str) -> PcmAudio:
    speech = espeak(text, voice=voice, rate=16_000)
    silence = np.zeros(8000, dtype=np.float32)
    return PcmAudio.from_array(np.concatenate([silence, speech, silence]).astype(np.float32))


def test_english_without_hint_stays_on_the_english_model(router: RoutedTranscriber) -> None:
    result = router.transcribe(_pcm("I know where you live and I will find you tonight.", "en"))
    assert result.model.name == router.english.model.name
    assert result.language == "en" and result.language_source == "model"
    assert "where you live" in " ".join(s.text for s in result.segments).lower()


@pytest.mark.parametrize(
    ("voice", "hint", "words"),
    [("es", "es", "vives"), ("pt-br", "pt", "mora"), ("fr", "fr", "habites")],
)
def test_a_language_hint_routes_to_the_multilingual_model(
    router: RoutedTranscriber, voice: str, hint: str, words: str
) -> None:
    text = {
        "es": "Sé dónde vives y esta noche te voy a matar.",
        "pt-br": "Eu sei onde você mora e vou te matar hoje à noite.",
        "fr": "Je sais où tu habites et je vais te tuer ce soir.",
    }[voice]
    result = router.transcribe(_pcm(text, voice), hint)
    assert result.model.name == router.multilingual.model.name
    assert result.language == hint and result.language_source == "hint"
    assert result.segments, "no transcript from the multilingual model"


def test_unsure_english_without_hint_is_detected_and_transcribed_again(router: RoutedTranscriber) -> None:
    result = router.transcribe(_pcm("Sé dónde vives y esta noche te voy a matar.", "es"))
    assert result.language_source == "detected", result
    assert result.language == "es"
    assert result.model.name == router.multilingual.model.name
    assert "english_pass_ms" in result.timings_ms
