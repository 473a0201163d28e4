"""The seam between the servicer and the data plane: what a pipeline is and what it answers.

The servicer hands each admitted, validated request to a VerdictPipeline as one ModerationJob
(gateway/job.py) and returns the Verdict it answers. The pipeline splits the job's media
itself (gateway/media/split_stage.py), choosing how. gateway/app.py wires the Orchestrator
(gateway/orchestrator/: the model services and fusion) or, in split_only mode, the
SplitOnlyPipeline below; tests pass their own pipeline to gateway.app.build_gateway.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from gateway.context import RequestContext
from gateway.job import ModerationJob
from gateway.media.split_stage import Splitter
from gateway.media.types import SplitMedia, StreamKind, StreamReport
from modgate.v1 import moderation_pb2 as pb


@runtime_checkable
class VerdictPipeline(Protocol):
    async def run(self, job: ModerationJob) -> pb.Verdict: ...


@runtime_checkable
class ClosablePipeline(VerdictPipeline, Protocol):
    """A pipeline holding resources (HTTP clients...); the server awaits aclose() on shutdown."""

    async def aclose(self) -> None: ...


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
        streams=[stream_proto(r) for r in info.streams],
    )


_STREAM_KIND_PB = {
    StreamKind.AUDIO: pb.STREAM_KIND_AUDIO,
    StreamKind.VIDEO: pb.STREAM_KIND_VIDEO,
    StreamKind.SUBTITLE: pb.STREAM_KIND_SUBTITLE,
    StreamKind.ATTACHMENT: pb.STREAM_KIND_ATTACHMENT,
    StreamKind.DATA: pb.STREAM_KIND_DATA,
}


def stream_proto(report: StreamReport) -> pb.MediaStream:
    return pb.MediaStream(
        index=report.index,
        kind=_STREAM_KIND_PB[report.kind],
        codec=report.codec,
        language=report.language,
        is_default=report.default,
        moderated=report.moderated,
        reason=report.reason,
        over_limit=report.over_limit,
        width=report.width,
        height=report.height,
        frames_sampled=report.frames_sampled,
    )


def timings_proto(ctx: RequestContext) -> list[pb.StageTiming]:
    return [pb.StageTiming(stage=stage, duration_ms=round(ms)) for stage, ms in ctx.timings.items()]


class SplitOnlyPipeline:
    """No model services: decision UNSPECIFIED, every modality SKIPPED, media facts reported."""

    REASON = "no model services configured"

    def __init__(self, splitter: Splitter) -> None:
        self.splitter = splitter

    async def run(self, job: ModerationJob) -> pb.Verdict:
        media = await self.splitter.split(job) if job.media is not None else None
        ctx = job.ctx
        modalities = [
            pb.ModalityStatus(modality=m, state=pb.MODALITY_STATE_SKIPPED, reason=self.REASON)
            for m in (pb.MODALITY_AUDIO, pb.MODALITY_VISUAL, pb.MODALITY_TEXT)
        ]
        return pb.Verdict(
            request_id=ctx.request_id,
            content_id=job.request.content_id,
            decision=pb.DECISION_UNSPECIFIED,
            modalities=modalities,
            policy_name=ctx.policy.name,
            policy_version=ctx.policy.version,
            timings=timings_proto(ctx),
            media=media_info_proto(media),
        )
