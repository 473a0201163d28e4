"""The CLIP towers behind the vision service: frames and prompts in, unit-norm embeddings out.

Frames arrive as uint8 RGB at model resolution (frames.py did the geometry); the scaling to
[0, 1] and the per-channel mean/std normalisation open_clip's ToTensor + Normalize would do
happen here, next to the model whose preprocessing config they come from.
"""

from __future__ import annotations

import logging
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from opentelemetry import trace

from modgate.telemetry import Attr

from .models import LoadedClip, model_info

log = logging.getLogger(__name__)
_tracer = trace.get_tracer(__name__)

Precision = Literal["auto", "fp32", "bf16", "fp16"]
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def native_bf16_cpu() -> bool:
    """Whether this CPU multiplies bfloat16 matrices natively (AMX or AVX512-BF16); elsewhere
    torch emulates bf16 and it is slower than fp32."""
    return bool(torch.cpu._is_amx_tile_supported() or torch.cpu._is_avx512_bf16_supported())


def resolve_precision(requested: Precision, device: torch.device) -> str:
    """auto: fp16 on CUDA, bf16 on a CPU with native bf16 (several times faster than fp32 there,
    embeddings all but identical: bench/README.md, "Service measurements"), fp32 elsewhere."""
    if requested != "auto":
        return requested
    if device.type == "cuda":
        return "fp16"
    return "bf16" if native_bf16_cpu() else "fp32"


class ClipEncoder:
    def __init__(self, clip: LoadedClip, *, variant: str, precision: Precision = "fp32") -> None:
        self.clip = clip
        self.precision = resolve_precision(precision, clip.device)
        self._dtype = DTYPES[self.precision]
        if self._dtype != torch.float32:
            # The image tower runs in reduced precision; the text tower (prompts, encoded once
            # per policy) and the final normalisation stay fp32.
            clip.model.visual.to(self._dtype)
        info = model_info(clip.source, variant=variant, device=clip.device)
        self.info = info.model_copy(update={"engine": f"{info.engine}/{self.precision}"})
        self.model_id = f"{self.info.name}@{self.info.version}"
        pre = clip.preprocess
        shape = (1, 3, 1, 1)
        self._mean = torch.tensor(pre.mean, dtype=torch.float32, device=clip.device).view(shape)
        self._std = torch.tensor(pre.std, dtype=torch.float32, device=clip.device).view(shape)

    def encode_images(self, frames: np.ndarray) -> np.ndarray:
        """(N, S, S, 3) uint8 RGB -> (N, D) float32 unit-norm image embeddings."""
        size = self.clip.preprocess.size
        if frames.ndim != 4 or frames.shape[1:] != (size, size, 3) or frames.dtype != np.uint8:
            raise ValueError(
                f"expected (N, {size}, {size}, 3) uint8 frames, not {frames.shape} {frames.dtype}"
            )
        # No span here: this runs inside BentoML's batch function, whose ambient trace context is
        # the first request the dispatcher ever served, so a span would land in that stale trace.
        # The per-request "vision.encode" span carries the batch size and model id instead.
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(frames)).to(self.clip.device)
            x = x.permute(0, 3, 1, 2).float().div_(255.0)
            x = (x - self._mean) / self._std
            emb = self.clip.model.encode_image(x.to(self._dtype), normalize=False)
            emb = F.normalize(emb.float(), dim=-1)
        return emb.cpu().numpy()

    def encode_texts(self, texts: list[str]) -> np.ndarray:
        """Prompts -> (N, D) float32 unit-norm text embeddings."""
        attributes = {Attr.BATCH_SIZE: len(texts), Attr.MODEL_ID: self.model_id}
        with _tracer.start_as_current_span("vision.encode_texts", attributes=attributes):
            with torch.inference_mode():
                tokens = self.clip.tokenizer(texts).to(self.clip.device)
                emb = self.clip.model.encode_text(tokens, normalize=True)
            return emb.float().cpu().numpy()
