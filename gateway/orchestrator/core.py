"""The Orchestrator: the gateway's data plane over the three model services.

For one ModerationJob: route each service (stable / canary / shadow, deterministic per request
id) -> split the media, starting AUDIO on the audio part while the frames decode
(FanOut.on_audio_part) -> start the other modalities -> wait for them until the deadline minus
a margin for fusion -> fuse under the request's policy -> count, hand the shadows to be judged
-> add the streams no modality saw (coverage.py) -> the Verdict. A slow or dead service costs
its modality (TIMED_OUT / FAILED, decided by the policy), never the whole verdict; the
verdict's ModelRef.variant says which variant served.
"""

from __future__ import annotations

import asyncio

from gateway.job import ModerationJob
from gateway.media.limits import StreamsOverLimit
from gateway.media.split_stage import Splitter
from gateway.media.types import SplitMedia
from gateway.orchestrator.calls import ServiceCalls
from gateway.orchestrator.coverage import with_coverage
from gateway.orchestrator.fanout import FanOut
from gateway.orchestrator.shadow import Shadows
from gateway.orchestrator.verdict import fuse_request, observe, verdict_proto
from gateway.upstreams.config import SERVICES, OrchestrationSettings
from gateway.upstreams.services import ServicePool
from modgate.v1 import moderation_pb2 as pb


class Orchestrator:
    def __init__(
        self,
        pools: dict[str, ServicePool],
        splitter: Splitter,
        settings: OrchestrationSettings,
        *,
        streams_over_limit: StreamsOverLimit = StreamsOverLimit.REVIEW,
    ) -> None:
        self.pools = pools
        self.streams_over_limit = streams_over_limit
        self.splitter = splitter
        self.shadows = Shadows(pools, settings)
        self.calls = ServiceCalls(pools, settings, self.shadows)

    async def aclose(self) -> None:
        await self.shadows.aclose()
        await asyncio.gather(*(p.aclose() for p in self.pools.values()))

    async def run(self, job: ModerationJob) -> pb.Verdict:
        routes = {s: self.pools[s].route(job.ctx.request_id) for s in SERVICES}
        fanout = FanOut(self.calls, job, routes)
        media = await self._split(job, fanout)
        fanout.start(media)
        await fanout.wait()
        fused = fuse_request(fanout.state, job.ctx)
        observe(fanout.state, job.ctx, routes)
        # Shadows are judged on what the models decided; both sides saw the same streams.
        self.shadows.compare(fanout.state, fused.decision, job.ctx.request_id)
        fused = with_coverage(fused, media, self.streams_over_limit)
        return verdict_proto(job, fused, fanout.state, media)

    async def _split(self, job: ModerationJob, fanout: FanOut) -> SplitMedia | None:
        if job.media is None:
            return None
        try:
            return await self.splitter.split(job, on_audio=fanout.on_audio_part)
        except BaseException:
            fanout.cancel()
            raise
