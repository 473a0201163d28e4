"""Nothing of a request runs after its verdict (issue 21, item 1), and what only the split
knows is charged to the request's admission: the orchestrator against a small real HTTP server
that speaks the text service's contract and counts its calls."""

from __future__ import annotations

import asyncio
import dataclasses
import time

import pytest
from aiohttp import web

from gateway.admission import Admission
from gateway.errors import RequestTooCostly
from gateway.media.types import SubtitleCue
from modgate.v1 import moderation_pb2 as pb
from modgate.wire import TextRequest
from tests.gateway.test_orchestrator import job, media, orchestrator, serve, status, text_handler

# One text call per caption (both before and after batches were bounded by characters too),
# several in flight at once.
PER_ITEM = {
    "text_batch_items": 1,
    "text_request_concurrency": 4,
    "text_bulk_inflight": 4,
    "text_bulk_idle_ms": 0,
}


def captions(n: int) -> pb.ModerateRequest:
    return pb.ModerateRequest(captions=[pb.CaptionCue(text=f"caption {i}") for i in range(n)])


def test_a_failed_batch_leaves_no_sibling_retrying_after_the_verdict() -> None:
    calls: list[float] = []

    async def handle(request: web.Request) -> web.StreamResponse:
        body = TextRequest.model_validate(await request.json())
        calls.append(time.monotonic())
        if body.items[0].id == "caption-0":
            return web.json_response({"error": "no"}, status=400)  # fails TEXT at once
        await asyncio.sleep(0.2)
        return web.json_response({"error": "busy"}, status=503)  # transient: would be retried

    async def main() -> tuple[pb.Verdict, float]:
        runner, url = await serve({"/moderate": handle})
        orch = orchestrator(
            {"text": url},
            retry_max_attempts=5,
            retry_backoff_base_ms=100,
            breaker_failure_threshold=100,
            **PER_ITEM,
        )
        try:
            verdict = await orch.run(job(captions(8), budget_s=10.0))
            answered = time.monotonic()
            await asyncio.sleep(1.5)  # the siblings' 503s and retries, had they gone on
            return verdict, answered
        finally:
            await orch.aclose()
            await runner.cleanup()

    verdict, answered = asyncio.run(main())
    assert status(verdict, pb.MODALITY_TEXT).state == pb.MODALITY_STATE_FAILED
    late = [round(at - answered, 3) for at in calls if at > answered]
    assert late == [], f"{len(late)} text calls after the verdict"


def test_a_cancelled_request_stops_its_text_calls() -> None:
    calls: list[float] = []

    async def handle(request: web.Request) -> web.StreamResponse:
        calls.append(time.monotonic())
        await asyncio.sleep(0.3)
        return await text_handler()(request)

    async def main() -> float:
        runner, url = await serve({"/moderate": handle})
        orch = orchestrator({"text": url}, **{**PER_ITEM, "text_request_concurrency": 2})
        try:
            run = asyncio.create_task(orch.run(job(captions(10), budget_s=10.0)))
            # Cancel once the first calls are in flight; a busy machine may take longer than 0.1 s.
            for _ in range(100):
                await asyncio.sleep(0.05)
                if calls:
                    break
            run.cancel()  # the caller went away, or the server's deadline fired
            with pytest.raises(asyncio.CancelledError):
                await run
            cancelled = time.monotonic()
            await asyncio.sleep(1.0)
            return cancelled
        finally:
            await orch.aclose()
            await runner.cleanup()

    cancelled = asyncio.run(main())
    assert calls and all(at <= cancelled for at in calls), [round(at - cancelled, 3) for at in calls]


def test_text_found_by_the_split_is_charged_and_can_exceed_the_maximum() -> None:
    calls: list[int] = []
    subtitles = [SubtitleCue("word " * 400, i * 1000, i * 1000 + 900, 2, "mov_text") for i in range(30)]

    async def main() -> float:
        runner, url = await serve({"/moderate": text_handler(calls=calls)})
        split = dataclasses.replace(media(frames=0), subtitles=subtitles)  # 60,000 characters
        orch = orchestrator({"text": url}, media=split)
        admission = Admission(max_inflight=4, max_units=600, max_request_units=400, max_request_text_units=50)
        request_job = job(pb.ModerateRequest(title="clip"), media=True)
        ticket = await admission.acquire(caller="c", units=0.004, text_units=0.004)
        request_job.ctx.ticket = ticket
        try:
            with pytest.raises(RequestTooCostly, match="MODGATE_GATEWAY_MAX_REQUEST_TEXT_UNITS") as refused:
                await orch.run(request_job)
            assert "60,0" in str(refused.value)  # the subtitles' characters are in the message
            return admission.units_inflight
        finally:
            admission.release(ticket)
            await orch.aclose()
            await runner.cleanup()

    assert asyncio.run(main()) == pytest.approx(0.004)  # refused: nothing of it was charged
    assert calls == []  # and nothing was sent
