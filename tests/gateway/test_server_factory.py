"""build_gateway(config, pipeline): an injected VerdictPipeline gets one ModerationJob per request
(the request as domain values, its media source, its context) and splits the media itself."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import grpc
import pytest

from gateway.app import build_gateway
from gateway.config import GatewayConfig
from gateway.context import RequestContext
from gateway.job import ModerationJob
from gateway.media.split_stage import MediaSplitter
from gateway.media.types import SplitMedia
from gateway.media.worker import SplitWorkers
from gateway.pipeline import SplitOnlyPipeline, media_info_proto
from modgate.policy import load_policies
from modgate.tools.mediagen import Cue, Generated, MediaSpec
from modgate.v1 import moderation_pb2 as pb
from modgate.v1 import moderation_pb2_grpc as pb_grpc

pytestmark = pytest.mark.timeout(60)


class RecordingPipeline:
    """A pipeline that splits the media, decides ALLOW and remembers what the server handed it."""

    def __init__(self, config: GatewayConfig) -> None:
        self.splitter = MediaSplitter(SplitWorkers(0), config)
        self.calls: list[tuple[ModerationJob, SplitMedia | None, RequestContext, float]] = []
        self.closed = False

    async def run(self, job: ModerationJob) -> pb.Verdict:
        ctx = job.ctx
        remaining = ctx.remaining_s()
        media = await self.splitter.split(job) if job.media is not None else None
        self.calls.append((job, media, ctx, remaining))
        return pb.Verdict(
            request_id=ctx.request_id,
            decision=pb.DECISION_ALLOW,
            policy_name=ctx.policy.name,
            media=media_info_proto(media),
        )

    async def aclose(self) -> None:
        self.closed = True


def config(**overrides: object) -> GatewayConfig:
    return GatewayConfig(listen="127.0.0.1:0", split_workers=0, decode_threads=1, **overrides)  # type: ignore[arg-type]


def test_injected_pipeline_receives_split_media_and_context(
    make_media: Callable[[MediaSpec], Generated],
) -> None:
    clip = make_media(MediaSpec(subtitles=(Cue(100, 900, "hello"),)))
    pipeline = RecordingPipeline(config())

    async def scenario() -> pb.Verdict:
        gateway = build_gateway(config(), pipeline)
        await gateway.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{gateway.port}") as channel:
                stub = pb_grpc.ModerationStub(channel)
                return await stub.Moderate(
                    pb.ModerateRequest(request_id="r-7", content_id="c", media=clip.data), timeout=8
                )
        finally:
            await gateway.stop(0)

    verdict = asyncio.run(scenario())
    assert verdict.decision == pb.DECISION_ALLOW and verdict.request_id == "r-7"
    assert verdict.media.frames_sampled == 4
    assert pipeline.closed
    [(job, media, ctx, remaining)] = pipeline.calls
    assert job.request.content_id == "c"
    assert media is not None and [c.text for c in media.subtitles] == ["hello"]
    assert media.audio is not None and len(media.frames) == 4
    assert ctx.policy == load_policies()["default"]
    assert ctx.request_id == "r-7"
    assert job.media is not None and job.media.data == clip.data  # unary bytes, as sent
    assert "split" in ctx.timings
    # The caller's 8 s deadline became the request's deadline.
    assert 4.0 < remaining <= 8.0
    assert ctx.deadline > time.monotonic() - 60


def test_build_gateway_refuses_an_unknown_default_policy() -> None:
    cfg = config(default_policy="missing")
    with pytest.raises(ValueError, match="MODGATE_GATEWAY_DEFAULT_POLICY"):
        build_gateway(cfg, SplitOnlyPipeline(MediaSplitter(SplitWorkers(0), cfg)))


def test_default_deadline_applies_when_the_caller_sets_none(
    make_media: Callable[[MediaSpec], Generated],
) -> None:
    clip = make_media(MediaSpec())
    pipeline = RecordingPipeline(config())

    async def scenario() -> grpc.StatusCode:
        gateway = build_gateway(config(default_deadline_s=0.001), pipeline)
        await gateway.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{gateway.port}") as channel:
                try:
                    await pb_grpc.ModerationStub(channel).Moderate(pb.ModerateRequest(media=clip.data))
                except grpc.aio.AioRpcError as error:
                    return error.code()
                raise AssertionError("the request finished inside a 1 ms deadline")
        finally:
            await gateway.stop(0)

    assert asyncio.run(scenario()) == grpc.StatusCode.DEADLINE_EXCEEDED
    assert pipeline.calls == []
