"""The front service's side of the encoder process: retried calls, what the model is, warm-up,
and frames split into model-sized requests.

``Vision`` reaches ``VisionEncoder`` through BentoML's dependency client (HTTP over a local
socket, numpy arrays pickled), which is what lets BentoML merge frames of concurrent requests
into one model batch.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import aiohttp
import numpy as np
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from modgate.wire import ModelInfo
from services.common import RequestError

from .models import Preprocess

log = logging.getLogger(__name__)
_tracer = trace.get_tracer(__name__)

ENCODER_ATTEMPTS = 3
# BentoML's dispatcher sends its first ~11 batches one at a time while it fits its latency model;
# spend them on warm-up calls so live traffic batches from the first request.
WARMUP_CALLS = 12


@dataclass(frozen=True)
class EncoderModel:
    """What the encoder process serves, as it described itself."""

    model: ModelInfo
    model_id: str
    preprocess: Preprocess
    logit_scale: float


class EncoderClient:
    def __init__(self, remote: Callable[[], Any], *, max_batch_size: int) -> None:
        # Returns the `bentoml.depends(VisionEncoder)` client; looked up per call, as before the
        # split, so the client is built lazily by BentoML inside the serving worker.
        self._remote = remote
        self._max_batch_size = max_batch_size

    async def call(self, method: str, *args: Any) -> Any:
        """Call the encoder process, retrying dropped connections (every encoder API is idempotent).

        The client pools keep-alive connections for 15 s, the encoder's server closes idle ones
        after 5 s, so a burst after a pause can write into a connection being closed."""
        for attempt in range(1, ENCODER_ATTEMPTS + 1):
            try:
                # A CLIENT span per hop: the encoder's server span ends after its response is
                # sent, so it nests under the call that waited for it, not the caller's span.
                with _tracer.start_as_current_span(f"vision.encoder {method}", kind=SpanKind.CLIENT):
                    return await getattr(self._remote().to_async, method)(*args)
            except aiohttp.ClientConnectionError as exc:
                if attempt == ENCODER_ATTEMPTS:
                    raise RequestError(
                        HTTPStatus.SERVICE_UNAVAILABLE,
                        "",
                        f"the vision model process did not answer {method} ({exc!r}); retry shortly",
                    ) from exc
                log.warning("vision: encoder %s attempt %d failed (%r); retrying", method, attempt, exc)
                await asyncio.sleep(0.05 * attempt)
        raise AssertionError("unreachable")

    async def describe(self) -> EncoderModel:
        described = await self.call("describe")
        model = ModelInfo.model_validate(described["model"])
        return EncoderModel(
            model=model,
            model_id=f"{model.name}@{model.version}",
            preprocess=Preprocess.from_dict(described["preprocess"]),
            logit_scale=float(described["logit_scale"]),
        )

    async def warm_up(self, size: int) -> None:
        warm = np.zeros((1, size, size, 3), dtype=np.uint8)
        for _ in range(WARMUP_CALLS):
            await self.call("encode_images", warm)

    async def encode_texts(self, texts: list[str]) -> np.ndarray:
        return np.asarray(await self.call("encode_texts", texts), dtype=np.float32)

    async def encode_frames(self, frames: list[np.ndarray]) -> tuple[np.ndarray, list[int]]:
        """Unit-norm embeddings of `frames`, and the sizes of the model batches they rode in."""
        step = self._max_batch_size
        chunks = [np.stack(frames[i : i + step]) for i in range(0, len(frames), step)]
        outputs = await asyncio.gather(*(self.call("encode_images", c) for c in chunks))
        rows = np.concatenate([np.asarray(o, dtype=np.float32) for o in outputs], axis=0)
        sizes: dict[int, int] = {}
        for batch_size, batch_id in rows[:, :2].astype(np.int64):
            sizes.setdefault(int(batch_id), int(batch_size))
        return rows[:, 2:], list(sizes.values())
