"""The openai-whisper (PyTorch) engine, tested with REAL weights.

The shipped tiny.en weights are CTranslate2 float16; services.speech.ct2_torch turns them into a
standard openai-whisper checkpoint (``{"dims", "model_state_dict"}``, loadable by
``whisper.load_model``). These tests check the conversion numerically against CTranslate2 and
then transcribe real espeak-ng speech with the converted weights; no randomly initialised model
is involved.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import ctranslate2
import numpy as np
import pytest
import torch
import whisper
from whisper.model import Whisper

from modgate.tools.mediagen import SENTENCES, Utterance, speak
from modgate.tools.wer import word_error_rate
from services.common import sha256_file
from services.speech.audio import PcmAudio
from services.speech.ct2_torch import load_ct2_as_whisper, save_checkpoint
from services.speech.engines.openai import OpenAIWhisperEngine
from services.speech.models import resolve
from services.speech.pipeline import Transcriber, build_transcriber
from tests.services.speech.conftest import settings
from tests.services.speech.test_speech_transcription import assert_segments_inside_speech, transcript


@pytest.fixture(scope="module")
def converted() -> Whisper:
    return load_ct2_as_whisper(resolve(settings()).path)


@pytest.fixture(scope="module")
def checkpoint(converted: Whisper, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("openai-whisper") / "tiny.en.pt"
    save_checkpoint(converted, path)
    return path


@pytest.fixture(scope="module")
def openai_transcriber(checkpoint: Path) -> Iterator[Transcriber]:
    """openai-whisper engine loading the .pt checkpoint through whisper.load_model (user-weights path)."""
    yield build_transcriber(settings(engine="openai-whisper", model_path=checkpoint))


def test_checkpoint_is_a_standard_openai_whisper_checkpoint(checkpoint: Path) -> None:
    model = whisper.load_model(str(checkpoint), device="cpu")
    dims = model.dims
    assert (dims.n_vocab, dims.n_mels, dims.n_audio_layer, dims.n_text_layer) == (51864, 80, 4, 4)
    assert (dims.n_audio_state, dims.n_audio_head, dims.n_text_ctx) == (384, 6, 448)
    assert not model.is_multilingual  # tiny.en
    assert model.state_dict().keys() == Whisper(dims).state_dict().keys()


def test_converted_encoder_matches_ctranslate2(converted: Whisper) -> None:
    """Same weights, same maths: the PyTorch encoder reproduces CTranslate2's (float32) output."""
    audio = speak(SENTENCES[0]).astype(np.float32) / 32768.0
    mel = whisper.log_mel_spectrogram(whisper.pad_or_trim(torch.from_numpy(audio)), 80)
    with torch.inference_mode():
        ours = converted.encoder(mel[None]).numpy()
    ct2 = ctranslate2.models.Whisper(str(resolve(settings()).path), device="cpu", compute_type="float32")
    reference = np.array(ct2.encode(ctranslate2.StorageView.from_array(mel[None].numpy().copy())))
    assert ours.shape == reference.shape == (1, 1500, 384)
    np.testing.assert_allclose(ours, reference, atol=2e-3, rtol=1e-3)


def test_openai_engine_transcribes_espeak_speech(
    openai_transcriber: Transcriber, spoken_track: tuple[np.ndarray, list[Utterance]], checkpoint: Path
) -> None:
    audio, spoken = spoken_track
    result = openai_transcriber.transcribe(PcmAudio.from_array(audio))
    wer = word_error_rate(" ".join(SENTENCES), transcript(result))
    assert wer <= 0.15, f"WER {wer:.1%}: {transcript(result)!r}"
    assert_segments_inside_speech(result, spoken)
    assert result.model.engine == "openai-whisper/fp32"
    assert result.model.name == "whisper-tiny.en"
    assert result.model.version == sha256_file(checkpoint)[:12]


def test_openai_engine_on_the_embedded_ct2_weights_equals_the_checkpoint(checkpoint: Path) -> None:
    """MODGATE_SPEECH_ENGINE=openai-whisper with the default model converts tiny.en in memory:
    the same tensors as the saved checkpoint, so the same transcripts."""
    engine = OpenAIWhisperEngine(settings(engine="openai-whisper"), resolve(settings()))
    assert engine.name == "openai-whisper/fp32" and not engine.multilingual
    from_checkpoint = whisper.load_model(str(checkpoint), device="cpu").state_dict()
    direct = engine.model.state_dict()
    assert direct.keys() == from_checkpoint.keys()
    for name, tensor in direct.items():
        assert torch.equal(tensor, from_checkpoint[name]), name
