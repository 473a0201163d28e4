"""The loaded sentence encoder: text in, unit-length embeddings out, traced."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from opentelemetry import context as otel_context
from opentelemetry.context import Context

from modgate import telemetry
from modgate.telemetry import Attr
from modgate.wire import ModelInfo, Variant
from services.text.models import MODEL_NAME, ResolvedModel

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer


class Encoder:
    def __init__(
        self,
        model: SentenceTransformer,
        resolved: ResolvedModel,
        *,
        device: str,
        batch_size: int = 64,
        variant: Variant = "stable",
    ) -> None:
        self.model = model
        self.resolved = resolved
        self.device = device
        self.batch_size = batch_size
        self.variant: Variant = variant
        self.model_id = f"{MODEL_NAME}@{resolved.version}"
        dimension = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        self.dimension = int(dimension() or 0)
        # One forward pass at a time: torch already uses every configured thread.
        self._lock = threading.Lock()

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
                attributes={Attr.VARIANT: self.variant, "modgate.device": self.device},
                tracer=__name__,
            ),
            self._lock,
        ):
            vectors = self.model.encode(
                texts,
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.asarray(vectors, dtype=np.float32)

    def vocabulary(self) -> list[str]:
        """The tokenizer's whole words (used to split run-together hashtags)."""
        tokenizer = getattr(self.model, "tokenizer", None)
        if tokenizer is None:
            return []
        return [token for token in tokenizer.get_vocab() if token.isalpha()]

    def info(self, *, calibrated: bool) -> ModelInfo:
        return ModelInfo(
            name=MODEL_NAME,
            version=self.resolved.version,
            engine=f"sentence-transformers/{self.device}",
            variant=self.variant,
            calibrated=calibrated,
        )
