"""The exact-hash stage: the upload's MD5/SHA-256 looked up before splitting, and the short-circuit.

The first step of Orchestrator.run for a request with media. The digests were computed while
the bytes arrived (gateway/media/intake.py, only for a policy that names banks); here they are
looked up in the policy's banks (modgate.banks.matcher, MD5 and SHA-256 tables only, sorted
and binary-searched: microseconds) and the policy's rule applied (modgate.banks.rules). On a
hit in a bank with exact_short_circuit, the verdict is returned at once: nothing is split, no
model service is called, every modality is SKIPPED with the match as the reason and the
verdict's reasons name the stages skipped. A hit in a bank without it is kept as evidence and
a decision floor for after the models (gateway/orchestrator/hashes.py).

The matcher reads MODGATE_BANK_DIR and picks up a writer's change (`modgate bank add`) on its
own: each lookup starts a background reload when reload_interval_s has passed.

Span: ``gateway.bank_lookup``; metrics: modgate_gateway_bank_lookup_seconds,
modgate_gateway_bank_short_circuits_total, modgate_gateway_bank_matches_total.
"""

from __future__ import annotations

import time
from pathlib import Path

from gateway import metrics
from gateway.job import ModerationJob
from gateway.orchestrator.hashes import short_circuit_fused
from gateway.orchestrator.record import short_circuit_record
from gateway.orchestrator.verdict import fused_verdict
from gateway.pipeline import timings_proto
from modgate import telemetry
from modgate.banks.config import BankSettings
from modgate.banks.matcher import BankMatcher
from modgate.banks.rules import ExactFinding, evaluate_exact
from modgate.banks.signals import SignalType
from modgate.v1 import moderation_pb2 as pb

ATTR_BANKS = "modgate.bank.names"
ATTR_HITS = "modgate.bank.matches"


class ExactStage:
    """The gateway's reader of the bank directory (exact signals only)."""

    def __init__(self, matcher: BankMatcher) -> None:
        self.matcher = matcher

    @classmethod
    def from_settings(cls, settings: BankSettings) -> ExactStage:
        matcher = BankMatcher(
            Path(settings.dir),
            signals={SignalType.MD5, SignalType.SHA256},
            reload_interval_s=settings.reload_interval_s,
        )
        return cls(matcher)

    def lookup(self, job: ModerationJob) -> list[ExactFinding]:
        """The upload's exact hits in the policy's banks, short-circuiting ones first."""
        policy, media = job.ctx.policy, job.media
        if media is None or media.digests is None or not policy.banks:
            return []
        started = time.monotonic()
        self.matcher.maybe_refresh()
        with telemetry.span("gateway.bank_lookup", {ATTR_BANKS: ",".join(policy.banks)}) as span:
            hits = self.matcher.match_exact(
                md5=media.digests.md5, sha256=media.digests.sha256, banks=list(policy.banks)
            )
            findings = evaluate_exact(policy, hits)
            span.set_attribute(ATTR_HITS, len(findings))
        metrics.BANK_LOOKUP_SECONDS.observe(time.monotonic() - started)
        job.ctx.record("bank_lookup", started)
        return _one_per_bank(findings)


def _one_per_bank(findings: list[ExactFinding]) -> list[ExactFinding]:
    """MD5 and SHA-256 of one banked file are two entries: one finding per bank is enough."""
    seen: set[str] = set()
    kept = []
    for finding in findings:
        if finding.bank not in seen:
            seen.add(finding.bank)
            kept.append(finding)
    return kept


def short_circuit_verdict(job: ModerationJob, findings: list[ExactFinding]) -> pb.Verdict:
    """The verdict of an upload found in a bank that decides alone: no split, no model."""
    ctx, policy = job.ctx, job.ctx.policy
    fused = short_circuit_fused(policy, findings)
    acting = [f for f in findings if f.short_circuit]
    for finding in acting:
        metrics.BANK_MATCHES.labels(finding.bank, finding.signal_type.value).inc()
    metrics.SHORT_CIRCUITS.labels(acting[0].bank).inc()
    for stage, ms in ctx.timings.items():
        metrics.STAGE_SECONDS.labels(stage).observe(ms / 1000.0)
    ctx.fusion_record = short_circuit_record(findings)
    return fused_verdict(
        fused,
        request_id=ctx.request_id,
        content_id=job.request.content_id,
        policy_name=policy.name,
        policy_version=policy.version,
        trace_id=telemetry.current_trace_id(),
        media=pb.MediaInfo(),
        timings=timings_proto(ctx),
    )
