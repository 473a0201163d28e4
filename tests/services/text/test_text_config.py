"""The text service reads exactly the documented environment names."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from modgate.policy import DEFAULT_POLICY_DIR
from services.text.config import TextSettings

KEYS = (
    "MODGATE_TEXT_MODEL_PATH",
    "MODGATE_TEXT_MAX_ITEMS",
    "MODGATE_TEXT_MAX_CHARS",
    "MODGATE_TEXT_THREADS",
    "MODGATE_DEVICE",
    "MODGATE_VARIANT",
    "MODGATE_POLICY_DIR",
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in (*KEYS, "DEVICE", "VARIANT", "POLICY_DIR", "MODGATE_TEXT_DEVICE"):
        monkeypatch.delenv(key, raising=False)


def test_defaults() -> None:
    settings = TextSettings()
    assert settings.model_path is None and settings.model_source == "auto"
    assert (settings.max_items, settings.max_chars) == (256, 10_000)
    assert settings.device == "auto" and settings.variant == "stable"
    assert settings.policy_dir == DEFAULT_POLICY_DIR
    assert 1 <= settings.torch_threads() <= 4


def test_documented_environment_names(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    values = {
        "MODGATE_TEXT_MODEL_PATH": str(tmp_path / "model"),
        "MODGATE_TEXT_MAX_ITEMS": "12",
        "MODGATE_TEXT_MAX_CHARS": "500",
        "MODGATE_TEXT_THREADS": "3",
        "MODGATE_DEVICE": "cpu",
        "MODGATE_VARIANT": "canary",
        "MODGATE_POLICY_DIR": str(tmp_path),
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    settings = TextSettings()
    assert settings.model_path == tmp_path / "model"
    assert (settings.max_items, settings.max_chars, settings.threads) == (12, 500, 3)
    assert settings.torch_threads() == 3
    assert (settings.device, settings.variant, settings.policy_dir) == ("cpu", "canary", tmp_path)


def test_shared_keys_are_not_read_under_other_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEVICE", "cuda")
    monkeypatch.setenv("MODGATE_TEXT_DEVICE", "cuda")
    monkeypatch.setenv("VARIANT", "canary")
    settings = TextSettings()
    assert (settings.device, settings.variant) == ("auto", "stable")


@pytest.mark.parametrize(
    ("key", "value"),
    [("MODGATE_TEXT_MAX_ITEMS", "0"), ("MODGATE_DEVICE", "tpu"), ("MODGATE_VARIANT", "beta")],
)
def test_bad_values_are_rejected(monkeypatch: pytest.MonkeyPatch, key: str, value: str) -> None:
    monkeypatch.setenv(key, value)
    with pytest.raises(ValidationError):
        TextSettings()
