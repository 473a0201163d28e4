"""Speech fixtures: the default model is loaded once per session and shared by the test modules."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from modgate.tools.mediagen import Utterance, have_espeak, speech_track
from services.speech.config import SpeechSettings
from services.speech.pipeline import Transcriber, build_transcriber


def settings(**overrides: object) -> SpeechSettings:
    """Settings from explicit values only, so a developer's MODGATE_* env cannot leak in."""
    values: dict[str, object] = {
        "engine": "faster-whisper",
        "model": "tiny.en",
        "model_path": None,
        "compute_type": "int8",
        "beam_size": 1,
        "device": "cpu",
        "variant": "stable",
        "allow_download": False,
        "multilingual_model": "",  # one model: tests of the router build it themselves
    }
    values.update(overrides)
    return SpeechSettings(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def tiny_transcriber() -> Iterator[Transcriber]:
    """The service's default pipeline: faster-whisper int8, tiny.en, Silero VAD."""
    yield build_transcriber(settings())


@pytest.fixture(scope="session")
def spoken_track() -> tuple[np.ndarray, list[Utterance]]:
    """Six espeak-ng sentences (threats, insults, benign) with known onsets, as int16 PCM."""
    if not have_espeak():
        pytest.fail("espeak-ng is not installed: `make install` installs it (apt-get install espeak-ng)")
    return speech_track()
