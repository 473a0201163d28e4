"""Model resolution: the packaged weights, a local copy, checksum failures that name the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.common import sha256_file
from services.text.models import (
    PINNED_SHA256,
    WEIGHTS_FILE,
    ModelFileError,
    package_model_dir,
    resolve_model,
    verify_model_dir,
)


def _linked_copy(tmp_path: Path) -> Path:
    """A model directory of symlinks to the packaged files (no 90 MB copy)."""
    source = package_model_dir()
    target = tmp_path / "model"
    for relative in PINNED_SHA256:
        (target / relative).parent.mkdir(parents=True, exist_ok=True)
        (target / relative).symlink_to(source / relative)
    return target


def test_package_resolves_and_matches_pins() -> None:
    resolved = resolve_model()
    assert resolved.source == "package"
    assert resolved.version == PINNED_SHA256[WEIGHTS_FILE][:12]
    assert Path(resolved.location) == package_model_dir()


def test_local_path_override(tmp_path: Path) -> None:
    directory = _linked_copy(tmp_path)
    resolved = resolve_model(model_path=directory)
    assert resolved.source == "path" and resolved.location == str(directory)


def test_missing_file_is_named(tmp_path: Path) -> None:
    directory = _linked_copy(tmp_path)
    (directory / "tokenizer.json").unlink()
    with pytest.raises(ModelFileError, match=r"tokenizer\.json is missing"):
        resolve_model(model_path=directory)


def test_tampered_file_is_named(tmp_path: Path) -> None:
    directory = _linked_copy(tmp_path)
    vocab = directory / "vocab.txt"
    content = vocab.read_bytes()
    vocab.unlink()
    vocab.write_bytes(content.replace(b"[PAD]", b"[PAX]", 1))
    with pytest.raises(ModelFileError, match=r"vocab\.txt has sha256 [0-9a-f]{64}, expected 07eced37"):
        verify_model_dir(directory)


def test_unverified_local_weights_get_their_own_version(tmp_path: Path) -> None:
    directory = tmp_path / "other"
    directory.mkdir()
    (directory / WEIGHTS_FILE).write_bytes(b"not really weights")
    resolved = resolve_model(model_path=directory, verify_checksums=False)
    assert resolved.version == sha256_file(directory / WEIGHTS_FILE)[:12]
    with pytest.raises(ModelFileError, match="does not exist"):
        resolve_model(model_path=tmp_path / "nowhere")


def test_hub_is_only_by_request(tmp_path: Path) -> None:
    resolved = resolve_model(source="hub", hub_model_id="sentence-transformers/all-MiniLM-L6-v2")
    assert resolved.source == "hub" and resolved.local_dir is None
    with pytest.raises(ModelFileError, match="MODGATE_TEXT_MODEL_PATH"):
        resolve_model(source="path")


def test_every_packaged_config_file_is_pinned() -> None:
    """A file sentence-transformers reads but nobody pinned could change unnoticed."""
    directory = package_model_dir()
    shipped = {
        str(p.relative_to(directory))
        for p in directory.rglob("*")
        if p.is_file() and p.suffix in (".json", ".txt", ".safetensors") and p.name != "data_config.json"
    }
    assert shipped <= set(PINNED_SHA256), shipped - set(PINNED_SHA256)
