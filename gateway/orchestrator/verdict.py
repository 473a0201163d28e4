"""The end of a request: fuse what its modalities found, count it, and build the Verdict."""

from __future__ import annotations

import time
from typing import Any

from gateway import metrics
from gateway.context import RequestContext
from gateway.errors import DeadlineExceeded, Unavailable
from gateway.fusion import DECISION_NAMES, Fused, NoVerdict, State, fuse
from gateway.job import ModerationJob
from gateway.media.types import SplitMedia
from gateway.orchestrator.items import transcript_proto
from gateway.orchestrator.ocr import on_screen_proto
from gateway.orchestrator.state import RunState
from gateway.pipeline import media_info_proto, timings_proto
from gateway.upstreams.routing import Route
from modgate import telemetry
from modgate.policy import Modality
from modgate.v1 import moderation_pb2 as pb

SERVICE_OF = {Modality.AUDIO: "speech", Modality.VISUAL: "vision", Modality.TEXT: "text"}


def fuse_request(state: RunState, ctx: RequestContext) -> Fused:
    """Fusion, in its own span; a policy that forbids a degraded verdict refuses the request."""
    started = time.monotonic()
    with telemetry.span("fusion") as span:
        try:
            fused = fuse(state.fusion_input())
        except NoVerdict as exc:
            telemetry.record_error(span, str(exc))
            if exc.timed_out:
                raise DeadlineExceeded(f"no verdict: {exc}") from None
            raise Unavailable(f"no verdict: {exc}; retry later") from None
        span.set_attribute(telemetry.Attr.DECISION, DECISION_NAMES.get(fused.decision, "UNSPECIFIED"))
    ctx.record("fusion", started)
    return fused


def observe(state: RunState, ctx: RequestContext, routes: dict[str, Route]) -> None:
    """Stage and modality metrics, and which variant served each modality that ran."""
    for stage, ms in ctx.timings.items():
        metrics.STAGE_SECONDS.labels(stage).observe(ms / 1000.0)
    for modality, outcome in state.outcomes.items():
        metrics.MODALITY_STATES.labels(modality.value, outcome.state.value).inc()
        if outcome.state != State.SKIPPED:
            metrics.MODALITY_SECONDS.labels(modality.value, outcome.state.value).observe(
                outcome.latency_ms / 1000.0
            )
    for modality, service in SERVICE_OF.items():
        outcome = state.outcomes.get(modality)
        if outcome is None or outcome.state == State.SKIPPED:
            continue
        variant = routes[service].primary
        metrics.SERVED_BY.labels(service, variant).inc()
        if variant == "canary":
            metrics.CANARY_REQUESTS.labels(service).inc()


def fused_verdict(
    fused: Fused,
    *,
    request_id: str,
    content_id: str,
    policy_name: str,
    policy_version: str,
    trace_id: str,
    **fields: Any,
) -> pb.Verdict:
    """A Verdict from what fusion (or a short-circuit) decided; `fields` are the rest (media,
    timings...) as pb.Verdict takes them."""
    return pb.Verdict(
        request_id=request_id,
        content_id=content_id,
        decision=fused.decision,
        risk=fused.risk,
        categories=fused.categories,
        evidence=fused.evidence,
        modalities=fused.modalities,
        policy_name=policy_name,
        policy_version=policy_version,
        trace_id=trace_id,
        degraded=fused.degraded,
        reasons=fused.reasons,
        **fields,
    )


def verdict_proto(job: ModerationJob, fused: Fused, state: RunState, media: SplitMedia | None) -> pb.Verdict:
    ctx = job.ctx
    verdict = fused_verdict(
        fused,
        request_id=ctx.request_id,
        content_id=job.request.content_id,
        policy_name=ctx.policy.name,
        policy_version=ctx.policy.version,
        trace_id=telemetry.current_trace_id(),
        media=media_info_proto(media),
    )
    if job.request.include_transcript:
        verdict.transcript.extend(transcript_proto(state.segments))
        verdict.on_screen_text.extend(on_screen_proto(state.on_screen))
    verdict.timings.extend(timings_proto(ctx))
    return verdict
