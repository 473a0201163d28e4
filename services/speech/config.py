"""Speech service settings: the one place this process reads its environment.

Service-specific keys carry the ``MODGATE_SPEECH_`` prefix; ``MODGATE_DEVICE`` and
``MODGATE_VARIANT`` are shared by every modgate process. The Helm chart sets exactly these
names, so they are part of the deployment contract: add keys, never rename them.

=====================================  ==============================================================
MODGATE_SPEECH_ENGINE                  faster-whisper (CTranslate2, default) | openai-whisper (PyTorch)
MODGATE_SPEECH_MODEL                   tiny.en (embedded, default) | base (embedded, multilingual) |
                                       a hub name such as "small" (needs ALLOW_DOWNLOAD and a network)
MODGATE_SPEECH_MODEL_PATH              your own weights: a CTranslate2 directory (model.bin, config.json,
                                       tokenizer.json/vocabulary.txt) or an openai-whisper ``.pt``
                                       checkpoint; overrides MODEL
MODGATE_SPEECH_MODEL_SHA256            optional sha256 of the file at MODEL_PATH (model.bin or .pt)
MODGATE_SPEECH_ALLOW_DOWNLOAD          false (default): never fetch weights at run time
MODGATE_SPEECH_CACHE_DIR               where the reassembled "base" weights go
                                       (default $XDG_CACHE_HOME/modgate/speech or ~/.cache/...)
MODGATE_SPEECH_COMPUTE_TYPE            CTranslate2 compute type (default int8); openai-whisper runs
                                       fp32 on CPU and fp16 on CUDA whatever this says
MODGATE_SPEECH_THREADS                 CPU threads for the model in all (default: usable cores)
MODGATE_SPEECH_CHUNK_WORKERS           faster-whisper: <=30 s chunks of one request decoded at once,
                                       each on THREADS / CHUNK_WORKERS threads (default 0: one per
                                       thread, the faster split for a small model; figures in
                                       bench/README.md, "Service measurements")
MODGATE_SPEECH_BEAM_SIZE               1 = greedy (default; fastest on CPU), >1 = beam search
MODGATE_SPEECH_MAX_AUDIO_SECONDS       longer requests get HTTP 413 (default 600)
MODGATE_SPEECH_MAX_CONCURRENCY         requests admitted at once (queued for the one model); more
                                       get HTTP 429 from BentoML (default 4)
MODGATE_SPEECH_REQUEST_TIMEOUT_S       BentoML request timeout (default 300)
MODGATE_SPEECH_VAD_THRESHOLD           Silero speech probability threshold (default 0.5)
MODGATE_SPEECH_HOST / _PORT            bind address (default 127.0.0.1:3001); ``bentoml serve
                                       --host/--port`` override them
MODGATE_DEVICE                         cpu (default) | cuda | auto
MODGATE_VARIANT                        stable (default) | canary: reported in every response
=====================================  ==============================================================
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from modgate.ports import HOST, SPEECH_PORT

Engine = Literal["faster-whisper", "openai-whisper"]
Device = Literal["cpu", "cuda", "auto"]
Variant = Literal["stable", "canary"]


def usable_cores() -> int:
    """CPU cores this process may actually use: affinity mask, capped by a cgroup v2 quota.

    os.cpu_count() reports the host's cores inside a container, which would make CTranslate2
    start one thread per host core and thrash a pod limited to two.
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            cores = min(cores, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cores)


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "modgate" / "speech"


class SpeechSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="MODGATE_SPEECH_", extra="ignore", frozen=True, populate_by_name=True
    )

    engine: Engine = "faster-whisper"
    model: str = "tiny.en"
    model_path: Path | None = None
    model_sha256: str | None = None
    allow_download: bool = False
    cache_dir: Path = Field(default_factory=default_cache_dir)
    compute_type: str = "int8"
    threads: int = Field(default_factory=usable_cores, ge=1)
    chunk_workers: int = Field(default=0, ge=0)  # 0: as many as threads
    beam_size: int = Field(default=1, ge=1, le=10)
    max_audio_seconds: float = Field(default=600.0, gt=0)
    max_concurrency: int = Field(default=4, ge=1)
    request_timeout_s: float = Field(default=300.0, gt=0)
    vad_threshold: float = Field(default=0.5, gt=0.0, lt=1.0)
    # Other languages (services/speech/routing.py): with an English-only model, a second,
    # multilingual one ("" = none) takes requests whose language hint is not English, and those
    # without a hint whose English transcript is unsure (mean avg_logprob under foreign_logprob,
    # or no words from speech): their language is detected among `languages` and decoded again.
    multilingual_model: str = "base"
    foreign_logprob: float = Field(default=-0.9, lt=0.0)
    languages: str = "en,es,pt,fr,de,id,hi,it,nl"
    host: str = HOST
    port: int = Field(default=SPEECH_PORT, ge=1, le=65535)
    # Shared across modgate processes, hence no prefix.
    device: Device = Field(default="cpu", validation_alias="MODGATE_DEVICE")
    variant: Variant = Field(default="stable", validation_alias="MODGATE_VARIANT")

    def chunk_parallelism(self) -> tuple[int, int]:
        """(chunks decoded at once, threads per chunk) within the thread budget.

        CTranslate2's intra-op threads pay off little on a model as small as Whisper tiny, while
        separate chunks are independent: spreading the threads over chunks uses the cores far
        better (bench/README.md, "Service measurements")."""
        workers = min(self.chunk_workers or self.threads, self.threads)
        return workers, max(1, self.threads // workers)

    @field_validator("model_path", mode="before")
    @classmethod
    def _empty_path_is_unset(cls, value: object) -> object:
        # Helm renders an unset value as an empty string.
        return None if value in ("", None) else value

    @field_validator("model_sha256", mode="before")
    @classmethod
    def _normalise_sha(cls, value: object) -> object:
        if value in ("", None):
            return None
        text = str(value).strip().lower()
        if len(text) != 64 or any(c not in "0123456789abcdef" for c in text):
            raise ValueError("MODGATE_SPEECH_MODEL_SHA256 must be 64 hex digits")
        return text
