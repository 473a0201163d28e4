"""The vision service's OCR hooks: resolve the models at start, build the reader, and read a
request's text beside the CLIP encoding (both at once: CLIP runs in the encoder process, OCR
in a thread of this one)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from modgate.policy import Policy
from modgate.wire import OcrResult

from ..config import VisionSettings
from .engine import OcrEngine
from .models import OcrModels, resolve_ocr_models
from .reader import FrameFiles, OcrReader

T = TypeVar("T")


def ocr_models(settings: VisionSettings) -> OcrModels | None:
    """The checked model files, or None when OCR is off; raises OcrModelError (cheap: sha256)."""
    return resolve_ocr_models(settings.ocr_model_dir) if settings.ocr_enabled else None


def build_reader(models: OcrModels | None, settings: VisionSettings) -> OcrReader | None:
    if models is None:
        return None
    engine = OcrEngine(
        models, det_side=settings.ocr_det_side, threads=settings.ocr_threads or settings.threads or 1
    )
    return OcrReader(
        engine,
        models.info(settings.variant),
        change_tolerance=settings.ocr_change_tolerance,
        min_interval_ms=settings.ocr_min_interval_ms,
    )


async def read_beside(
    work: Coroutine[Any, Any, T], reader: OcrReader | None, policy: Policy, files: FrameFiles
) -> tuple[T, OcrResult | None]:
    """`work`'s result and the frames' text (None when OCR is off here or in the policy); if
    either fails, the other is cancelled and the failure raised."""
    if reader is None or not policy.ocr.enabled:
        return await work, None
    tasks = (asyncio.ensure_future(work), asyncio.ensure_future(reader.read(files, policy.ocr)))
    try:
        first, text = await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    return first, text
