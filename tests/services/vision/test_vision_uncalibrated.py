"""Without weights the service refuses to start, unless told to run uncalibrated and say so."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import pytest

from modgate.wire import VisionInfo
from tests.services.vision.conftest import READY_TIMEOUT_S, VisionProcess
from tests.services.vision.tinyclip import TinyClip, shape_jpeg
from tests.services.vision.vision_http import score, score_async


def _exit_log(service: VisionProcess) -> str:
    try:
        code = service.process.wait(timeout=READY_TIMEOUT_S)
    except Exception:
        pytest.fail(f"the service kept running instead of refusing to start:\n{service.log_tail()}")
    assert code != 0
    return service.log_tail()


def test_refuses_to_start_without_weights(start_vision: Callable[..., VisionProcess]) -> None:
    service = start_vision(ready=False)
    log = _exit_log(service)
    assert "no CLIP weights configured" in log
    for how in ("MODGATE_VISION_CHECKPOINT", "MODGATE_VISION_MODEL_TAG", "MODGATE_VISION_PRETRAINED"):
        assert how in log
    assert "MODGATE_VISION_ALLOW_UNCALIBRATED=true" in log


def test_allowed_uncalibrated_mode_says_so_in_every_response(
    start_vision: Callable[..., VisionProcess], tiny_clip: TinyClip
) -> None:
    # The tiny architecture keeps random-weight inference cheap; no checkpoint is given.
    service = start_vision(
        MODGATE_VISION_ALLOW_UNCALIBRATED="true", MODGATE_VISION_ARCH=str(tiny_clip.config_path)
    )
    info = VisionInfo.model_validate_json(httpx.post(f"{service.url}/info", json={}, timeout=60).content)
    assert info.model.calibrated is False and info.model.version == "random-init"

    frames = [shape_jpeg(c, "circle", seed=900 + i) for i, c in enumerate(["red", "blue", "green"])]
    results = [score(service.url, frames, [0, 1, 2], policy="base")]

    async def burst() -> list:  # type: ignore[type-arg]
        async with httpx.AsyncClient(base_url=service.url, timeout=120) as client:
            return await asyncio.gather(
                *(score_async(client, [f], [i], policy="base") for i, f in enumerate(frames))
            )

    results += asyncio.run(burst())
    assert all(r.model.calibrated is False for r in results)
    assert all(r.model.version == "random-init" for r in results)
