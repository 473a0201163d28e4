"""The seam between request handling and verdict forming.

The server validates a request, resolves and splits its media, then hands
(request, split media, context) to a VerdictPipeline. SplitOnlyPipeline is the pipeline for a
gateway without model services: it reports what the splitter found and skips every modality.
The real pipeline (fan-out to the model services + fusion) lives in its own module and is
selected by MODGATE_GATEWAY_PIPELINE ("module:factory") or passed to build_server().
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from gateway.media.types import SplitMedia
from modgate.policy import Policy
from modgate.v1 import moderation_pb2 as pb


@dataclass
class RequestContext:
    request_id: str
    # Absolute time.monotonic() by which the verdict must be returned.
    deadline: float
    policy: Policy
    # Stage name -> wall time in ms, in the order stages ran (split, speech, fusion...).
    timings: dict[str, float] = field(default_factory=dict)
    # Authenticated caller, once authentication exists (None: anonymous).
    caller: str | None = None
    streamed: bool = False
    # Pipeline work started before run() (AudioFirstPipeline.start_audio), for run() to join.
    early: dict[str, Any] = field(default_factory=dict)

    @staticmethod
    def new_request_id() -> str:
        return uuid.uuid4().hex

    def remaining_s(self) -> float:
        return self.deadline - time.monotonic()

    def record(self, stage: str, started: float) -> None:
        """Record a stage that began at time.monotonic() == started."""
        self.timings[stage] = self.timings.get(stage, 0.0) + (time.monotonic() - started) * 1000.0


@runtime_checkable
class VerdictPipeline(Protocol):
    async def run(
        self, request: pb.ModerateRequest, media: SplitMedia | None, ctx: RequestContext
    ) -> pb.Verdict: ...


@runtime_checkable
class AudioFirstPipeline(VerdictPipeline, Protocol):
    """A pipeline that can start on the audio while the video is still being split.

    The server calls start_audio(request, audio_part, ctx) once the audio, subtitles and
    metadata are split (audio_part has no frames yet), then run() with the whole media. Speech
    is the longest stage of a video, so starting it before the frames are decoded shortens the
    request by the video split. start_audio returns the task it started (the server cancels it
    if the rest of the split fails), or None when there is nothing to start.
    """

    def start_audio(
        self, request: pb.ModerateRequest, audio_part: SplitMedia, ctx: RequestContext
    ) -> Any: ...


@runtime_checkable
class ClosablePipeline(VerdictPipeline, Protocol):
    """A pipeline holding resources (HTTP clients...); the server awaits aclose() on shutdown."""

    async def aclose(self) -> None: ...


# Builds a pipeline from the gateway config and the loaded policies.
PipelineFactory = Callable[..., VerdictPipeline]


def media_info_proto(media: SplitMedia | None) -> pb.MediaInfo:
    if media is None:
        return pb.MediaInfo()
    info = media.info
    return pb.MediaInfo(
        duration_ms=info.duration_ms,
        container=info.container,
        width=info.width,
        height=info.height,
        has_audio=info.has_audio,
        has_video=info.has_video,
        subtitle_streams=info.subtitle_streams,
        frames_sampled=info.frames_sampled,
        undecodable_streams=list(info.undecodable_streams),
    )


def timings_proto(ctx: RequestContext) -> list[pb.StageTiming]:
    return [pb.StageTiming(stage=stage, duration_ms=round(ms)) for stage, ms in ctx.timings.items()]


class SplitOnlyPipeline:
    """No model services: decision UNSPECIFIED, every modality SKIPPED, media facts reported."""

    REASON = "no model services configured"

    async def run(
        self, request: pb.ModerateRequest, media: SplitMedia | None, ctx: RequestContext
    ) -> pb.Verdict:
        modalities = [
            pb.ModalityStatus(modality=m, state=pb.MODALITY_STATE_SKIPPED, reason=self.REASON)
            for m in (pb.MODALITY_AUDIO, pb.MODALITY_VISUAL, pb.MODALITY_TEXT)
        ]
        return pb.Verdict(
            request_id=ctx.request_id,
            content_id=request.content_id,
            decision=pb.DECISION_UNSPECIFIED,
            modalities=modalities,
            policy_name=ctx.policy.name,
            policy_version=ctx.policy.version,
            timings=timings_proto(ctx),
            media=media_info_proto(media),
        )


def split_only(config: object, policies: dict[str, Policy]) -> VerdictPipeline:
    """Factory for MODGATE_GATEWAY_PIPELINE (the default)."""
    return SplitOnlyPipeline()
