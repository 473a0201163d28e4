"""The orchestrator against small real HTTP servers that speak the services' wire contract.

The real services run in tests/e2e; these servers (aiohttp, in the test's event loop) answer
what the real ones cannot be made to answer on demand: another policy version, a hang, a
reply for the wrong variant, a count of calls.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import Awaitable, Callable

import grpc
import numpy as np
import pytest
from aiohttp import web

from gateway.app import service_pools
from gateway.context import RequestContext
from gateway.errors import EmptyMedia, grpc_status
from gateway.job import ModerationJob, ModerationRequest
from gateway.media.intake import MediaSource
from gateway.media.split_stage import AudioReady
from gateway.media.types import MediaInfo, SampledFrame, SplitMedia, SubtitleCue
from gateway.orchestrator import Orchestrator
from gateway.orchestrator.items import text_items
from gateway.upstreams.config import OrchestrationSettings, parse_upstreams
from modgate.policy import Policy, Requests, load_policies
from modgate.v1 import moderation_pb2 as pb
from modgate.wire import (
    FrameScore,
    ModelInfo,
    PolicyRef,
    TextItemResult,
    TextRequest,
    TextResult,
    VisionResult,
)
from tests.gateway.test_upstream_resilience import free_port

POLICY = load_policies()["default"]
SKIPPABLE = POLICY.model_copy(update={"requests": Requests(allow_skip_all_modalities=True)})
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def ref(policy: Policy, version: str | None = None) -> PolicyRef:
    return PolicyRef(name=policy.name, version=version or policy.version, digest=policy.digest)


async def serve(routes: dict[str, Handler]) -> tuple[web.AppRunner, str]:
    app = web.Application(client_max_size=64 * 1024 * 1024)
    for path, handler in routes.items():
        app.router.add_post(path, handler)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}"


def text_handler(
    version: str | None = None, variant: str = "stable", calls: list[int] | None = None
) -> Handler:
    async def handle(request: web.Request) -> web.Response:
        req = TextRequest.model_validate(await request.json())
        if calls is not None:
            calls.append(len(req.items))
        result = TextResult(
            items=[TextItemResult(id=i.id, scores={"violence": 0.01}, matches=[]) for i in req.items],
            model=ModelInfo(name="all-MiniLM-L6-v2", version="x", variant=variant),  # type: ignore[arg-type]
            policy=ref(POLICY, version),
        )
        return web.json_response(text=result.model_dump_json())

    return handle


class Presplit:
    """The split stage's stand-in: these tests hand the orchestrator media they built (frames
    at chosen times, subtitles), not a container to decode."""

    def __init__(self, media: SplitMedia | None) -> None:
        self.media = media

    async def split(self, job: ModerationJob, *, on_audio: AudioReady | None = None) -> SplitMedia:
        assert self.media is not None, "the test gave the job media but the splitter none"
        return self.media


def orchestrator(urls: dict[str, str], media: SplitMedia | None = None, **settings: object) -> Orchestrator:
    upstreams = parse_upstreams({s: {"stable": {"url": u}} for s, u in urls.items()})
    base = {"metrics_port": 0, "retry_backoff_base_ms": 1, "deadline_margin_ms": 25}
    base.update(settings)
    orchestration = OrchestrationSettings(**base)  # type: ignore[arg-type]
    return Orchestrator(service_pools(upstreams, orchestration), Presplit(media), orchestration)


def job(
    request: pb.ModerateRequest,
    *,
    media: bool = False,
    budget_s: float = 5.0,
    request_id: str = "r1",
    policy: Policy = POLICY,
) -> ModerationJob:
    """The job the servicer would make of `request`; `media` gives it a source for the splitter."""
    ctx = RequestContext(request_id=request_id, deadline=time.monotonic() + budget_s, policy=policy)
    source = MediaSource(b"container bytes", max_bytes=1024) if media else None
    return ModerationJob(ModerationRequest.from_proto(request), source, ctx)


def status(verdict: pb.Verdict, modality: int) -> pb.ModalityStatus:
    return next(m for m in verdict.modalities if m.modality == modality)


def media(frames: int = 0, subtitles: tuple[str, ...] = ()) -> SplitMedia:
    image = np.zeros((24, 24, 3), dtype=np.uint8)
    return SplitMedia(
        info=MediaInfo(duration_ms=frames * 500, container="mp4", has_video=bool(frames), effective_fps=2.0),
        frames=[SampledFrame(timestamp_ms=i * 500, image=image, keyframe=False) for i in range(frames)],
        subtitles=[SubtitleCue(t, i * 1000, i * 1000 + 900, 2, "mov_text") for i, t in enumerate(subtitles)],
        metadata={"comment": "shot on a phone"},
    )


def test_text_items_cover_every_text_source() -> None:
    request = pb.ModerateRequest(
        title="My day",
        description="A walk",
        hashtags=["fun", "#sun", " "],
        captions=[pb.CaptionCue(text="hello", start_ms=10, end_ms=20), pb.CaptionCue(text="  ")],
    )
    items = text_items(ModerationRequest.from_proto(request), media(subtitles=("first cue", "")))
    assert [(i.id, i.source, i.text, i.start_ms, i.end_ms) for i in items] == [
        ("title", "title", "My day", None, None),
        ("description", "description", "A walk", None, None),
        ("hashtags", "hashtag", "#fun #sun", None, None),
        ("caption-0", "caption", "hello", 10, 20),
        ("subtitle-0", "subtitle", "first cue", 0, 900),
        ("metadata-comment", "metadata", "shot on a phone", None, None),
    ]


def test_service_holding_another_policy_version_fails_its_modality() -> None:
    async def main() -> pb.Verdict:
        runner, url = await serve({"/moderate": text_handler(version="1999.01.01-1")})
        orch = orchestrator({"text": url})
        try:
            return await orch.run(job(pb.ModerateRequest(title="hello")))
        finally:
            await orch.aclose()
            await runner.cleanup()

    verdict = asyncio.run(main())
    text = status(verdict, pb.MODALITY_TEXT)
    assert text.state == pb.MODALITY_STATE_FAILED
    assert "holds policy default@1999.01.01-1" in text.reason and POLICY.version in text.reason
    assert verdict.decision == pb.DECISION_REVIEW  # on_failed=review
    assert verdict.degraded


def test_a_replica_of_the_wrong_variant_is_not_trusted() -> None:
    async def main() -> pb.Verdict:
        runner, url = await serve({"/moderate": text_handler(variant="canary")})
        orch = orchestrator({"text": url})
        try:
            return await orch.run(job(pb.ModerateRequest(title="hello")))
        finally:
            await orch.aclose()
            await runner.cleanup()

    text = status(asyncio.run(main()), pb.MODALITY_TEXT)
    assert text.state == pb.MODALITY_STATE_FAILED and "answered as variant canary" in text.reason


def test_a_hung_service_times_out_its_modality_before_the_deadline() -> None:
    async def hang(request: web.Request) -> web.Response:
        await asyncio.sleep(1.0)  # far past the 0.3 s budget (and short, so cleanup is quick)
        return web.json_response({})

    async def main() -> tuple[pb.Verdict, float]:
        runner, url = await serve({"/moderate": hang})
        orch = orchestrator({"text": url})
        try:
            started = time.monotonic()
            verdict = await orch.run(job(pb.ModerateRequest(title="hello"), budget_s=0.3))
            return verdict, time.monotonic() - started
        finally:
            await orch.aclose()
            await runner.cleanup()

    verdict, elapsed = asyncio.run(main())
    assert 0.25 <= elapsed < 0.3  # the deadline minus the 25 ms margin kept for fusion
    assert status(verdict, pb.MODALITY_TEXT).state == pb.MODALITY_STATE_TIMED_OUT
    assert verdict.decision == pb.DECISION_REVIEW


def test_frames_over_the_per_call_cap_are_split_and_merged_in_order() -> None:
    calls: list[list[int]] = []

    async def vision(request: web.Request) -> web.Response:
        form = await request.post()
        stamps = json.loads(str(form["timestamps_ms"]))
        assert form["variant"] == "stable" and form["policy_version"] == POLICY.version
        calls.append(stamps)
        result = VisionResult(
            frames=[
                FrameScore(
                    index=i,
                    timestamp_ms=t,
                    scores={"violence": 0.9},
                    best_prompts={"violence": "p"},
                    duplicate_of=0 if i else None,
                )
                for i, t in enumerate(stamps)
            ],
            duplicates_skipped=len(stamps) - 1,
            batch_sizes=[len(stamps)],
            model=ModelInfo(name="ViT-B-32", version="x", calibrated=True),
            policy=ref(POLICY),
        )
        return web.json_response(text=result.model_dump_json())

    async def main() -> pb.Verdict:
        runner, url = await serve({"/score": vision})
        orch = orchestrator({"vision": url}, media(frames=70))
        try:
            return await orch.run(job(pb.ModerateRequest(), media=True))
        finally:
            await orch.aclose()
            await runner.cleanup()

    verdict = asyncio.run(main())
    assert sorted(len(c) for c in calls) == [6, 64]
    visual = status(verdict, pb.MODALITY_VISUAL)
    assert (visual.state, visual.items) == (pb.MODALITY_STATE_OK, 70)
    frames = sorted(e.frame_index for e in verdict.evidence if e.modality == pb.MODALITY_VISUAL)
    assert frames == list(range(min(70, len(frames))))
    assert {e.start_ms for e in verdict.evidence} <= {i * 500 for i in range(70)}
    assert verdict.decision == pb.DECISION_BLOCK  # calibrated, 0.9 on every frame: the temporal rule holds


def test_text_batches_respect_the_service_item_limit() -> None:
    calls: list[int] = []

    async def main() -> pb.Verdict:
        runner, url = await serve({"/moderate": text_handler(calls=calls)})
        orch = orchestrator({"text": url}, text_batch_items=128)
        request = pb.ModerateRequest(captions=[pb.CaptionCue(text=f"line {i}") for i in range(300)])
        try:
            return await orch.run(job(request))
        finally:
            await orch.aclose()
            await runner.cleanup()

    verdict = asyncio.run(main())
    assert sorted(calls) == [44, 128, 128]
    assert status(verdict, pb.MODALITY_TEXT).items == 300


@pytest.mark.parametrize("skip", [pb.MODALITY_TEXT])
def test_skipped_text_calls_nothing(skip: int) -> None:
    calls: list[int] = []

    async def main() -> pb.Verdict:
        runner, url = await serve({"/moderate": text_handler(calls=calls)})
        orch = orchestrator({"text": url})
        request = pb.ModerateRequest(title="x", options=pb.ModerateOptions(skip_modalities=[skip]))
        try:
            # Skipping the one modality a request has input for needs the policy's leave (below).
            return await orch.run(job(request, policy=SKIPPABLE))
        finally:
            await orch.aclose()
            await runner.cleanup()

    verdict = asyncio.run(main())
    assert calls == []
    assert status(verdict, skip).reason == "skipped on request"


@pytest.mark.parametrize("policy", [POLICY, SKIPPABLE], ids=["default policy", "policy allows it"])
def test_skips_that_leave_nothing_to_run_are_refused_unless_the_policy_allows(policy: Policy) -> None:
    """Audio and video skipped, and no text in the request or the container: nothing would run."""
    calls: list[int] = []

    async def main() -> pb.Verdict:
        runner, url = await serve({"/moderate": text_handler(calls=calls)})
        orch = orchestrator({"text": url}, media=dataclasses.replace(media(frames=2), metadata={}))
        skips = [pb.MODALITY_AUDIO, pb.MODALITY_VISUAL]
        request = pb.ModerateRequest(options=pb.ModerateOptions(skip_modalities=skips))
        try:
            return await orch.run(job(request, media=True, policy=policy))
        finally:
            await orch.aclose()
            await runner.cleanup()

    if policy is SKIPPABLE:
        verdict = asyncio.run(main())
        assert {m.state for m in verdict.modalities} == {pb.MODALITY_STATE_SKIPPED}
    else:
        with pytest.raises(
            EmptyMedia,
            match="nothing to moderate: AUDIO: skipped on request; VISUAL: skipped on request; TEXT: no ",
        ):
            asyncio.run(main())
    assert calls == []


def test_text_only_request_skipping_text_is_refused() -> None:
    async def main() -> None:
        orch = orchestrator({"text": "http://127.0.0.1:9"})
        request = pb.ModerateRequest(
            title="x", options=pb.ModerateOptions(skip_modalities=[pb.MODALITY_TEXT])
        )
        try:
            await orch.run(job(request))
        finally:
            await orch.aclose()

    with pytest.raises(
        EmptyMedia,
        match="to moderate: AUDIO: text-only request; VISUAL: text-only request; TEXT: skipped on request",
    ) as refused:
        asyncio.run(main())
    assert "requests.allow_skip_all_modalities" in str(refused.value)
    assert grpc_status(refused.value)[0] == grpc.StatusCode.INVALID_ARGUMENT
