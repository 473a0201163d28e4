"""The three model services' HTTP request shapes, and their stable/canary upstreams.

Each function turns gateway data into the service's documented request (see the module
docstring of services/<name>/service.py), sends it through an `Upstream` (deadline, retries,
breaker) and parses the typed response from modgate.wire. A body that does not parse is an
`UpstreamError` of kind "bad_response", never a crash.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Sequence
from typing import TypeVar

import httpx
import numpy as np
from PIL import Image
from pydantic import BaseModel, ValidationError

from gateway.media.types import SampledFrame
from gateway.upstreams.config import OrchestrationSettings, ServiceUpstreams
from gateway.upstreams.http import Upstream, UpstreamError
from gateway.upstreams.routing import Route, route
from modgate.banks.rules import merge_hash_results
from modgate.wire import SpeechResult, TextItem, TextRequest, TextResult, VisionResult

Model = TypeVar("Model", bound=BaseModel)
JPEG_QUALITY = 90


class ServicePool:
    """A service's stable upstream and optional canary, with deterministic routing."""

    def __init__(self, service: str, config: ServiceUpstreams, settings: OrchestrationSettings) -> None:
        self.service = service
        self.config = config
        self.stable = Upstream(service, "stable", config.stable.url, settings)
        self.canary = Upstream(service, "canary", config.canary.url, settings) if config.canary else None

    def route(self, request_id: str, pinned: str = "") -> Route:
        return route(request_id, self.config.canary, pinned)

    def upstream(self, variant: str) -> Upstream:
        if variant == "canary":
            if self.canary is None:
                raise ValueError(f"{self.service} has no canary upstream")
            return self.canary
        return self.stable

    def all(self) -> list[Upstream]:
        return [u for u in (self.stable, self.canary) if u is not None]

    async def aclose(self) -> None:
        await asyncio.gather(*(u.aclose() for u in self.all()))


def _parse(up: Upstream, response: httpx.Response, model: type[Model]) -> Model:
    try:
        return model.model_validate_json(response.content)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "<body>"
        raise up._fail(
            f"answered with a body that is not a {model.__name__} ({where}: {first['msg']}); "
            "is the gateway pointed at the right service, and are both on the same modgate version?",
            "bad_response",
        ) from None


# --- speech -------------------------------------------------------------------------------


def pcm16(audio: np.ndarray) -> bytes:
    """float32 [-1, 1] -> little-endian int16: half the bytes, no loss that matters to ASR."""
    clipped = np.clip(audio, -1.0, 1.0)
    return (clipped * 32767.0).astype("<i2").tobytes()


def language_hint(locale: str) -> str:
    """BCP-47 "pt-BR" -> ISO 639-1 "pt"; empty when none."""
    return locale.split("-")[0].split("_")[0].strip().lower()


async def transcribe(up: Upstream, pcm: bytes, *, language: str, deadline: float) -> SpeechResult:
    data = {"sample_rate": "16000", "dtype": "int16", "variant": up.variant}
    if language:
        data["language"] = language
    files = {"audio": ("audio.pcm", pcm, "application/octet-stream")}
    try:
        response = await up.post("/transcribe", deadline=deadline, files=files, data=data)
    except UpstreamError as exc:
        # An English-only model refuses other language hints: transcribe without the hint
        # rather than lose the modality (the transcript says which language it heard).
        if language and exc.status == 422 and "language" in str(exc):
            data.pop("language")
            response = await up.post("/transcribe", deadline=deadline, files=files, data=data)
        else:
            raise
    return _parse(up, response, SpeechResult)


# --- vision -------------------------------------------------------------------------------


def encode_jpegs(frames: Sequence[SampledFrame]) -> list[bytes]:
    out = []
    for frame in frames:
        buffer = io.BytesIO()
        Image.fromarray(frame.image, mode="RGB").save(buffer, format="JPEG", quality=JPEG_QUALITY)
        out.append(buffer.getvalue())
    return out


async def score_frames(
    up: Upstream,
    jpegs: Sequence[bytes],
    timestamps_ms: Sequence[int],
    *,
    policy: str,
    policy_version: str,
    deadline: float,
    frames_per_call: int,
) -> VisionResult:
    """Score frames; more than frames_per_call (the service's per-request cap,
    MODGATE_GATEWAY_VISION_FRAMES_PER_CALL) go as parallel calls, merged."""
    if not jpegs:
        raise ValueError("score_frames needs at least one frame")
    starts = range(0, len(jpegs), frames_per_call)
    try:
        # A TaskGroup, not gather: one chunk failing cancels the others (and their retries).
        async with asyncio.TaskGroup() as group:
            tasks = [
                group.create_task(
                    _score_chunk(
                        up,
                        jpegs[i : i + frames_per_call],
                        timestamps_ms[i : i + frames_per_call],
                        policy=policy,
                        policy_version=policy_version,
                        deadline=deadline,
                    )
                )
                for i in starts
            ]
    except ExceptionGroup as failed:
        raise failed.exceptions[0] from None
    parts = [task.result() for task in tasks]
    if len(parts) == 1:
        return parts[0]
    frames = []
    for offset, part in zip(starts, parts, strict=True):
        for frame in part.frames:
            dup = None if frame.duplicate_of is None else frame.duplicate_of + offset
            frames.append(frame.model_copy(update={"index": frame.index + offset, "duplicate_of": dup}))
    first = parts[0]
    return first.model_copy(
        update={
            "frames": frames,
            "duplicates_skipped": sum(p.duplicates_skipped for p in parts),
            "batch_sizes": [b for p in parts for b in p.batch_sizes],
            "hashes": merge_hash_results([p.hashes for p in parts]),
        }
    )


async def _score_chunk(
    up: Upstream,
    jpegs: Sequence[bytes],
    timestamps_ms: Sequence[int],
    *,
    policy: str,
    policy_version: str,
    deadline: float,
) -> VisionResult:
    files = [("frames", (f"frame{i:04d}.jpg", jpeg, "image/jpeg")) for i, jpeg in enumerate(jpegs)]
    data = {
        "timestamps_ms": json.dumps(list(timestamps_ms)),
        "frame_format": "jpeg",
        "policy": policy,
        # A service holding another version re-reads its policy directory first.
        "policy_version": policy_version,
        "variant": up.variant,
    }
    response = await up.post("/score", deadline=deadline, files=files, data=data)
    return _parse(up, response, VisionResult)


# --- text ---------------------------------------------------------------------------------


async def classify(
    up: Upstream, items: Sequence[TextItem], *, policy: str, policy_version: str, deadline: float
) -> TextResult:
    """POST /moderate with a TextRequest body (at most the service's MODGATE_TEXT_MAX_ITEMS; the
    orchestrator's TextScorer batches a request's items, gateway/orchestrator/text_work.py).

    policy_version makes a service holding another version re-read its policies first;
    variant makes a replica of the other variant refuse (409) instead of answering."""
    request = TextRequest(items=list(items), policy=policy, policy_version=policy_version, variant=up.variant)  # type: ignore[arg-type]
    body = request.model_dump(mode="json", exclude_none=True)
    response = await up.post("/moderate", deadline=deadline, json=body)
    return _parse(up, response, TextResult)
