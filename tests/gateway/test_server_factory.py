"""build_server(config, pipeline): an injected VerdictPipeline gets (request, media, context)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import grpc
import pytest

from gateway.config import GatewayConfig
from gateway.media.types import SplitMedia
from gateway.pipeline import RequestContext, SplitOnlyPipeline, media_info_proto
from gateway.server import build_server, load_pipeline
from modgate.policy import load_policies
from modgate.tools.mediagen import Cue, Generated, MediaSpec
from modgate.v1 import moderation_pb2 as pb
from modgate.v1 import moderation_pb2_grpc as pb_grpc

pytestmark = pytest.mark.timeout(60)


class RecordingPipeline:
    """A pipeline that decides ALLOW and remembers what the server handed it."""

    def __init__(self) -> None:
        self.calls: list[tuple[pb.ModerateRequest, SplitMedia | None, RequestContext, float]] = []
        self.closed = False

    async def run(
        self, request: pb.ModerateRequest, media: SplitMedia | None, ctx: RequestContext
    ) -> pb.Verdict:
        self.calls.append((request, media, ctx, ctx.remaining_s()))
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
    pipeline = RecordingPipeline()

    async def scenario() -> pb.Verdict:
        gateway = build_server(config(), pipeline)
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
    [(request, media, ctx, remaining)] = pipeline.calls
    assert request.content_id == "c"
    assert media is not None and [c.text for c in media.subtitles] == ["hello"]
    assert media.audio is not None and len(media.frames) == 4
    assert ctx.policy == load_policies()["default"]
    assert ctx.caller is None and not ctx.streamed
    assert "split" in ctx.timings
    # The caller's 8 s deadline became the request's deadline.
    assert 4.0 < remaining <= 8.0
    assert ctx.deadline > time.monotonic() - 60


def test_load_pipeline_resolves_module_factory() -> None:
    policies = load_policies()
    assert isinstance(
        load_pipeline(config(pipeline="gateway.pipeline:split_only"), policies), SplitOnlyPipeline
    )
    with pytest.raises(ValueError, match="module:factory"):
        load_pipeline(config(pipeline="gateway.pipeline"), policies)
    with pytest.raises(TypeError, match="no async run"):
        load_pipeline(config(pipeline="operator:is_"), policies)  # returns a bool


def test_build_server_refuses_an_unknown_default_policy() -> None:
    with pytest.raises(ValueError, match="MODGATE_GATEWAY_DEFAULT_POLICY"):
        build_server(config(default_policy="missing"), SplitOnlyPipeline())


def test_default_deadline_applies_when_the_caller_sets_none(
    make_media: Callable[[MediaSpec], Generated],
) -> None:
    clip = make_media(MediaSpec())
    pipeline = RecordingPipeline()

    async def scenario() -> grpc.StatusCode:
        gateway = build_server(config(default_deadline_s=0.001), pipeline)
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
