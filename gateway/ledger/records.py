"""Verdict <-> VerdictRecord: what the ledger stores after fusion, and a stored verdict's reply."""

from __future__ import annotations

import time

from gateway.context import RequestContext
from gateway.fusion import DECISION_NAMES
from gateway.ledger.entry import LedgerEntry
from gateway.orchestrator.record import models_of, unfused_record
from modgate.policy import Policy
from modgate.store.records import PolicyStamp, Thumbnail, VerdictRecord, new_verdict_id
from modgate.v1 import moderation_pb2 as pb

UNFUSED_REASON = "no fusion: the gateway's pipeline fused nothing (split_only mode, or a test pipeline)"


def stamp(policy: Policy) -> PolicyStamp:
    return PolicyStamp(policy.name, policy.version, policy.digest, policy.model_dump(mode="json"))


def record_of(
    entry: LedgerEntry,
    verdict: pb.Verdict,
    ctx: RequestContext | None,
    policy: PolicyStamp,
    thumbnails: tuple[Thumbnail, ...] = (),
) -> VerdictRecord:
    """The record of a verdict about to be sent; gives the verdict its id and decision time
    first, so the stored copy is byte for byte what the caller gets."""
    now = time.time()
    verdict.verdict_id = new_verdict_id()
    verdict.decided_at_ms = int(now * 1000)
    fusion = ctx.fusion_record if ctx is not None and ctx.fusion_record is not None else None
    fusion = fusion or unfused_record(UNFUSED_REASON)
    return VerdictRecord(
        verdict_id=verdict.verdict_id,
        caller=entry.caller,
        request_id=entry.request_id,
        request_digest=entry.digest,
        content_id=entry.content_id,
        received_at=entry.received_at,
        decided_at=now,
        decision=DECISION_NAMES.get(verdict.decision, "UNSPECIFIED"),
        risk=float(verdict.risk),
        degraded=verdict.degraded,
        policy=policy,
        trace_id=verdict.trace_id,
        models=models_of(fusion),
        fusion=fusion,
        verdict=verdict.SerializeToString(),
        thumbnails=thumbnails,
    )


def stored_answer(record: VerdictRecord, timings: dict[str, float]) -> pb.Verdict:
    """A stored verdict as the reply to a duplicate: from_store set, this call's timings."""
    verdict = pb.Verdict.FromString(record.verdict)
    verdict.from_store = True
    del verdict.timings[:]
    verdict.timings.extend(pb.StageTiming(stage=s, duration_ms=round(ms)) for s, ms in timings.items())
    return verdict
