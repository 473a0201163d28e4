"""Bad requests get a clear 4xx that names the problem, and the service keeps serving."""

from __future__ import annotations

import httpx
import pytest

from tests.services.vision.conftest import VisionProcess
from tests.services.vision.tinyclip import shape_jpeg
from tests.services.vision.vision_http import score, score_request

GOOD = shape_jpeg("red", "circle", seed=800)


def _case(frames: list[bytes], timestamps: list[int], **kwargs: object) -> dict[str, object]:
    return score_request(frames, timestamps, **kwargs)


CASES = {
    "undecodable image": (_case([GOOD, b"this is not a jpeg"], [0, 40], policy="base"), 400, "frame 1"),
    "truncated jpeg": (_case([GOOD[: len(GOOD) // 2]], [0], policy="base"), 400, "not a decodable image"),
    "zero frames": ({"data": {"timestamps_ms": "[]", "policy": "base"}}, 400, "no frames"),
    "oversize batch": (_case([GOOD] * 65, list(range(65)), policy="base"), 413, "limit is 64"),
    # shapes_service runs with MODGATE_VISION_MAX_FRAME_BYTES=65536
    "oversize frame": (_case([GOOD, bytes(70_000)], [0, 1], policy="base"), 413, "70000 bytes"),
    "wrong raw shape": (
        _case([bytes(224 * 224 * 3)], [0], policy="base", raw=True, raw_shape=[224, 224, 3]),
        422,
        "raw frames must be",
    ),
    "raw byte count": (
        _case([bytes(100)], [0], policy="base", raw=True, raw_shape=[32, 32, 3]),
        400,
        "100 bytes",
    ),
    "raw without shape": (_case([bytes(100)], [0], policy="base", raw=True), 400, "raw_shape"),
    "timestamps mismatch": (_case([GOOD, GOOD], [0], policy="base"), 400, "timestamps_ms"),
    "negative timestamp": (_case([GOOD], [-5], policy="base"), 400, "non-negative"),
    "unknown policy": (_case([GOOD], [0], policy="no-such-policy"), 404, "no-such-policy"),
    "unknown frame format": (
        {
            "files": [("frames", ("f.png", GOOD, "image/png"))],
            "data": {"timestamps_ms": "[0]", "frame_format": "png"},
        },
        400,
        "frame_format",
    ),
    "wrong variant": (_case([GOOD], [0], policy="base", variant="canary"), 409, "canary"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_request_is_a_clear_4xx(shapes_service: VisionProcess, name: str) -> None:
    request, status, needle = CASES[name]
    response = httpx.post(f"{shapes_service.url}/score", timeout=120, **request)  # type: ignore[arg-type]
    assert response.status_code == status, response.text
    assert needle in response.text, response.text
    body = response.json()
    assert "error" in body


def test_service_still_serves_after_refusals(shapes_service: VisionProcess) -> None:
    result = score(shapes_service.url, [GOOD], [7], policy="base")
    assert [f.timestamp_ms for f in result.frames] == [7]
