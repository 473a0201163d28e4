"""Vision service settings: the one place this process kind reads its environment.

Env names are part of the deployment contract (the Helm chart sets exactly these):
``MODGATE_VISION_*`` for this service plus the shared ``MODGATE_DEVICE``, ``MODGATE_VARIANT``
and ``MODGATE_POLICY_DIR``. Empty values count as unset, so a chart can template a key as
``""`` to mean "not configured".
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from modgate.banks.config import BankSettings
from modgate.policy import DEFAULT_POLICY_DIR
from modgate.ports import HOST, VISION_PORT


class VisionSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="MODGATE_VISION_",
        env_ignore_empty=True,
        extra="ignore",
        populate_by_name=True,
        frozen=True,
    )

    # --- model source: the first one configured wins (checkpoint, then store tag, then hub) ---
    # An open_clip architecture name (ViT-B-32) or the path of an open_clip model-config JSON
    # (`{"embed_dim", "vision_cfg", "text_cfg"}`, optionally wrapped as `{"model_cfg": ...}`),
    # which is registered under the file's stem.
    arch: str = "ViT-B-32"
    # A weights file (.pt/.pth/.bin/.safetensors) for `arch`, or a directory in open_clip's
    # `local-dir` layout (open_clip_config.json + weights [+ SHA256SUMS]), whose config wins.
    checkpoint: Path | None = None
    # Expected sha256 of a checkpoint *file*; a `<file>.sha256` sidecar serves the same purpose.
    checkpoint_sha256: str | None = Field(default=None, pattern=r"^[0-9a-fA-F]{64}$")
    # A BentoML model-store tag written by `python -m services.vision.import_model`.
    model_tag: str | None = None
    # An open_clip pretrained tag (e.g. laion2b_s34b_b79k); downloads, so online only.
    pretrained: str | None = None
    # Without weights, serve random ones only if this is set; every response then says
    # calibrated=false and the gateway keeps the visual modality out of decisions.
    allow_uncalibrated: bool = False

    # --- serving ---
    host: str = HOST
    port: int = Field(default=VISION_PORT, ge=1, le=65535)
    request_timeout_s: float = Field(default=60.0, gt=0)

    # --- request limits and batching ---
    max_frames_per_request: int = Field(default=64, ge=1)
    max_frame_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    max_batch_size: int = Field(default=32, ge=2)  # frames per model batch (BentoML needs >= 2)
    max_latency_ms: int = Field(default=20_000, ge=10)  # queueing budget before BentoML sheds with 503
    # Max per-channel (Y, Cb, Cr) dHash Hamming distance, of 112 bits, for a frame to count as a
    # near-duplicate of an earlier one in the same request (see dedup.py); -1 turns it off.
    dedup_distance: int = Field(default=4, ge=-1, le=64)
    threads: int | None = Field(default=None, ge=1)  # torch intra-op threads; None = torch default
    # Image-tower precision. auto: fp16 on CUDA, bf16 on CPUs with native bf16 matrix units
    # (Intel AMX / AVX512-BF16, where it is several times faster than fp32), fp32 elsewhere.
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"

    # --- on-screen text (services/vision/ocr/): PP-OCR from the rapidocr wheel ---
    # False: no OCR models are loaded and no frame is read (the policy's ocr.enabled decides
    # per policy when this is on).
    ocr_enabled: bool = True
    ocr_model_dir: Path | None = None  # default: the installed rapidocr package's models folder
    # Longest side of the picture text detection sees; boxes are cropped from the frame as sent.
    # 640 on the gateway's 960 px OCR frames keeps 24 px text (at 720p) readable (the quality
    # set's table is in README.md); detection cost grows with its area.
    ocr_det_side: int = Field(default=640, ge=64, le=4096)
    # ONNX Runtime intra-op threads for OCR; None: `threads` (the stack's thread plan), else 1.
    ocr_threads: int | None = Field(default=None, ge=1)
    # A frame whose 64x36 grey thumbnail is within this (0-255, every cell) of a frame already
    # read takes its text instead of being read again.
    ocr_change_tolerance: int = Field(default=10, ge=0, le=255)
    # Frames closer than this after the last frame read are not read (sampling above ~2 fps).
    ocr_min_interval_ms: int = Field(default=500, ge=0)

    # --- shared keys (no MODGATE_VISION_ prefix) ---
    device: Literal["cpu", "cuda", "auto"] = Field(
        default="cpu", validation_alias=AliasChoices("MODGATE_DEVICE", "device")
    )
    variant: Literal["stable", "canary"] = Field(
        default="stable", validation_alias=AliasChoices("MODGATE_VARIANT", "variant")
    )
    policy_dir: Path = Field(
        default=DEFAULT_POLICY_DIR, validation_alias=AliasChoices("MODGATE_POLICY_DIR", "policy_dir")
    )
    # Hash banks (MODGATE_BANK_DIR, MODGATE_BANK_RELOAD_INTERVAL_S): see modgate/banks/config.py.
    banks: BankSettings = Field(default_factory=BankSettings)
