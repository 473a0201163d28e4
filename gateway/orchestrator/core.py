"""The Orchestrator: the gateway's data plane over the three model services.

For one ModerationJob: look the upload's MD5/SHA-256 up in the policy's hash banks (exact.py;
a hit in a bank that short-circuits returns the verdict here: nothing split, no model called)
-> route each service (stable / canary / shadow, deterministic per request
id) -> split the media, starting AUDIO on the audio part while the frames decode
(FanOut.on_audio_part) -> charge what the split found to the request's admission (subtitle
text, frames, audio seconds; over the per-request maximum: RESOURCE_EXHAUSTED) -> start the
other modalities (nothing to run: INVALID_ARGUMENT unless the policy allows it) -> wait for
them until the deadline minus a margin for fusion -> fuse under the request's policy -> count,
hand the shadows to be judged -> apply the hash-bank matches (hashes.py: the vision service's
PDQ frame matches under the policy's video rule, exact hits that did not short-circuit) -> add
the streams no modality saw (coverage.py) -> the Verdict.
However run() ends, every call it started has been cancelled by then: nothing of a request
outlives its answer (shadow copies excepted: they are judged after the verdict, bounded by
shadow_timeout_s). A slow or dead service costs
its modality (TIMED_OUT / FAILED, decided by the policy), never the whole verdict; the
verdict's ModelRef.variant says which variant served.
"""

from __future__ import annotations

import asyncio

from gateway.cost import media_cost
from gateway.errors import EmptyMedia, FailedPrecondition
from gateway.fusion import Fused, State
from gateway.job import ModerationJob
from gateway.media.limits import StreamsOverLimit
from gateway.media.split_stage import Splitter
from gateway.media.types import SplitMedia
from gateway.orchestrator.calls import ServiceCalls
from gateway.orchestrator.coverage import not_moderated, with_coverage
from gateway.orchestrator.exact import ExactStage, short_circuit_verdict
from gateway.orchestrator.fanout import FanOut
from gateway.orchestrator.hashes import video_findings, with_bank_findings
from gateway.orchestrator.record import fused_record
from gateway.orchestrator.shadow import Shadows
from gateway.orchestrator.text_work import TextScorer
from gateway.orchestrator.verdict import fuse_request, observe, verdict_proto
from gateway.upstreams.config import SERVICES, OrchestrationSettings
from gateway.upstreams.routing import Route
from gateway.upstreams.services import ServicePool
from modgate.banks.rules import ExactFinding
from modgate.policy import Modality
from modgate.v1 import moderation_pb2 as pb


class Orchestrator:
    def __init__(
        self,
        pools: dict[str, ServicePool],
        splitter: Splitter,
        settings: OrchestrationSettings,
        *,
        streams_over_limit: StreamsOverLimit = StreamsOverLimit.REVIEW,
        exact: ExactStage | None = None,
    ) -> None:
        self.pools = pools
        self.exact = exact
        self.streams_over_limit = streams_over_limit
        self.splitter = splitter
        self.settings = settings
        text_scorer = TextScorer(settings)
        self.shadows = Shadows(pools, settings, text_scorer)
        self.calls = ServiceCalls(pools, settings, self.shadows, text_scorer)

    async def aclose(self) -> None:
        await self.shadows.aclose()
        await asyncio.gather(*(p.aclose() for p in self.pools.values()))

    async def run(self, job: ModerationJob) -> pb.Verdict:
        routes = self._routes(job)
        exact = self.exact.lookup(job) if self.exact is not None else []
        if any(finding.short_circuit for finding in exact):
            return short_circuit_verdict(job, exact)
        fanout = FanOut(self.calls, job, routes)
        try:
            media = await self._split(job, fanout)
            self._charge(job, media)
            fanout.start(media)
            self._check_something_runs(job, fanout)
            await fanout.wait()
        finally:
            fanout.cancel()  # a no-op after wait(); on any error or cancellation, stops every call
        job.ctx.frames = media.frames if media is not None else ()
        fused = fuse_request(fanout.state, job.ctx)
        observe(fanout.state, job.ctx, routes)
        # Shadows are judged on what the models decided; both sides saw the same streams.
        self.shadows.compare(fanout.state, fused.decision, job.ctx.request_id)
        fused = self._with_banks(job, fused, fanout, media, exact)
        fused = with_coverage(fused, not_moderated(media), self.streams_over_limit)
        job.ctx.fusion_record = fused_record(fanout.state, exact, media, self.streams_over_limit)
        return verdict_proto(job, fused, fanout.state, media)

    def _routes(self, job: ModerationJob) -> dict[str, Route]:
        pinned = job.request.variant
        if pinned == "canary" and all(self.pools[s].canary is None for s in SERVICES):
            raise FailedPrecondition(
                "options.variant='canary' but no service has a canary upstream in this gateway's "
                "upstreams file; deploy a canary or pin 'stable'"
            )
        return {s: self.pools[s].route(job.ctx.request_id, pinned) for s in SERVICES}

    async def _split(self, job: ModerationJob, fanout: FanOut) -> SplitMedia | None:
        if job.media is None:
            return None
        return await self.splitter.split(job, on_audio=fanout.on_audio_part)

    @staticmethod
    def _with_banks(
        job: ModerationJob, fused: Fused, fanout: FanOut, media: SplitMedia | None, exact: list[ExactFinding]
    ) -> Fused:
        """Known content on top of the models' decision (PDQ frames, exact hits kept as evidence)."""
        state, policy = fanout.state, job.ctx.policy
        duration = media.info.duration_ms if media is not None and media.info.duration_ms else None
        video = video_findings(policy, state.hashes, duration_ms=duration, frame_streams=state.frame_streams)
        return with_bank_findings(
            fused,
            policy,
            video,
            exact,
            hashes=state.hashes,
            frame_streams=state.frame_streams,
            duration_ms=duration,
        )

    def _charge(self, job: ModerationJob, media: SplitMedia | None) -> None:
        """Charge what only the split knows; RequestTooCostly over the per-request maximum."""
        ticket = job.ctx.ticket
        if ticket is None or media is None:
            return
        found = media_cost(media, precharged_frames=job.ctx.cost.frames)
        rates = self.settings.cost_rates()
        ticket.charge(rates.units(found), rates.text_units(found), (job.ctx.cost + found).describe())

    @staticmethod
    def _check_something_runs(job: ModerationJob, fanout: FanOut) -> None:
        """A request whose skips leave nothing to run moderated nothing: refused unless allowed."""
        if fanout.tasks or job.ctx.policy.requests.allow_skip_all_modalities:
            return
        outcomes = fanout.state.outcomes
        skipped = "; ".join(
            f"{m.value}: {outcomes[m].reason}"
            for m in (Modality.AUDIO, Modality.VISUAL, Modality.TEXT)
            if m in outcomes and outcomes[m].state == State.SKIPPED
        )
        raise EmptyMedia(
            f"nothing to moderate: {skipped}; policy {job.ctx.policy.name!r} does not allow a request "
            "that runs no modality (requests.allow_skip_all_modalities: false): skip fewer modalities"
        )
