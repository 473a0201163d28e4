"""Reduced-precision image tower: chosen by hardware under `auto`, close to fp32 when used."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from services.vision.config import VisionSettings
from services.vision.encoder import ClipEncoder, native_bf16_cpu, resolve_precision
from services.vision.models import load_clip, resolve_source

pytestmark = pytest.mark.timeout(120)

# A small ViT (same code path as ViT-B-32: patch embedding, transformer, projection).
SMALL_VIT = {
    "embed_dim": 64,
    "vision_cfg": {"image_size": 64, "layers": 2, "width": 128, "patch_size": 16, "head_width": 32},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}


def small_encoder(tmp_path: Path, precision: str) -> ClipEncoder:
    arch = tmp_path / "modgate-small-vit.json"
    arch.write_text(json.dumps(SMALL_VIT), encoding="utf-8")
    source = resolve_source(VisionSettings(arch=str(arch), allow_uncalibrated=True))
    return ClipEncoder(load_clip(source, torch.device("cpu")), variant="stable", precision=precision)  # type: ignore[arg-type]


def test_auto_picks_by_hardware_and_explicit_choices_stand() -> None:
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert resolve_precision("auto", cpu) == ("bf16" if native_bf16_cpu() else "fp32")
    assert resolve_precision("auto", cuda) == "fp16"
    assert resolve_precision("fp32", cuda) == "fp32"
    assert resolve_precision("bf16", cpu) == "bf16"
    assert VisionSettings().precision == "auto"


def test_bf16_embeddings_match_fp32_and_say_so(tmp_path: Path) -> None:
    frames = np.random.default_rng(5).integers(0, 256, size=(6, 64, 64, 3), dtype=np.uint8)
    exact = small_encoder(tmp_path, "fp32")
    reduced = small_encoder(tmp_path, "bf16")

    a = exact.encode_images(frames)
    b = reduced.encode_images(frames)
    assert a.dtype == b.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-5)
    cosine = (a * b).sum(axis=1)
    assert cosine.min() > 0.995, cosine
    # Prompts stay fp32 (encoded once per policy), so text embeddings are identical.
    np.testing.assert_array_equal(
        exact.encode_texts(["a red circle"]), reduced.encode_texts(["a red circle"])
    )
    assert (exact.info.engine.endswith("/fp32"), reduced.info.engine.endswith("/bf16")) == (True, True)
    assert reduced.clip.model.visual.conv1.weight.dtype == torch.bfloat16
