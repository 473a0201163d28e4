"""The vision service's HTTP request shape, as the tests (and the gateway) send it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import httpx

from modgate.wire import VisionResult


def score_request(
    frames: Sequence[bytes], timestamps_ms: Sequence[int], *, raw: bool = False, **fields: Any
) -> dict[str, Any]:
    """httpx keyword arguments for POST /score: one 'frames' file part per frame + form fields."""
    content_type = "application/octet-stream" if raw else "image/jpeg"
    suffix = "rgb" if raw else "jpg"
    data = {"timestamps_ms": json.dumps(list(timestamps_ms)), "frame_format": "raw" if raw else "jpeg"}
    data.update({k: v if isinstance(v, str) else json.dumps(v) for k, v in fields.items()})
    files = [("frames", (f"frame{i:03d}.{suffix}", frame, content_type)) for i, frame in enumerate(frames)]
    return {"files": files, "data": data}


def score(url: str, frames: Sequence[bytes], timestamps_ms: Sequence[int], **kwargs: Any) -> VisionResult:
    response = httpx.post(f"{url}/score", timeout=120, **score_request(frames, timestamps_ms, **kwargs))
    assert response.status_code == 200, response.text
    return VisionResult.model_validate_json(response.content)


async def score_async(
    client: httpx.AsyncClient, frames: Sequence[bytes], timestamps_ms: Sequence[int], **kwargs: Any
) -> VisionResult:
    response = await client.post("/score", **score_request(frames, timestamps_ms, **kwargs))
    assert response.status_code == 200, response.text
    return VisionResult.model_validate_json(response.content)


def metric_value(metrics_text: str, sample: str) -> float:
    """The value of one Prometheus sample line (name plus labels exactly as exposed), or 0."""
    for line in metrics_text.splitlines():
        if line.startswith(sample + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0
