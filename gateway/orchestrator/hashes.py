"""Hash-bank matches in the verdict: evidence VISUAL / FRAME / signal "hash", and the decision floor.

Known content decides without the models: a match under a bank's rule is at least the bank's
action (BLOCK or REVIEW), whatever the zero-shot scores were or whether VISUAL counted at all
(it runs UNCALIBRATED without CLIP weights; the PDQ hashes it returns need no model). This
module applies the policy's `banks:` rules to what the vision service found
(VisionResult.hashes, merged across its frame-chunk calls) and to the gateway's own exact
MD5/SHA-256 hits (gateway/orchestrator/exact.py), after fusion scored the models:

    findings = video_findings(policy, state.hashes, duration_ms=..., frame_streams=...)
    fused = with_bank_findings(fused, policy, findings, exact_findings)

Each fired video finding adds one Evidence per matched frame (the frame's closest entry:
bank, entry id, distance, the frame's time) and raises the bank's category to the action's
threshold; a finding under its rule only adds a reason. fusion.py's scoring is untouched.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from gateway import metrics
from gateway.fusion import Fused
from modgate.banks.rules import ExactFinding, VideoFinding, evaluate_video, frame_seconds
from modgate.policy import BankAction, Policy
from modgate.v1 import moderation_pb2 as pb
from modgate.wire import HashMatch, HashResult

SIGNAL = "hash"
# Frame evidence kept per fired bank (the reason gives the full count).
MAX_FRAMES_PER_BANK = 24
DECISION_OF = {BankAction.BLOCK: pb.DECISION_BLOCK, BankAction.REVIEW: pb.DECISION_REVIEW}
# What a short-circuit verdict skipped (its reasons say so).
SHORT_CIRCUIT_SKIPS = "split, speech, vision, text (no media decoded, no model called)"
_NOTHING = "no category reached its review threshold"


def action_score(policy: Policy, category: str, action: BankAction) -> float:
    """The score a match stands for: the threshold of its action for its category."""
    thresholds = policy.categories[category].thresholds
    return thresholds.block if action == BankAction.BLOCK else thresholds.review


def _per_stream(hashes: HashResult, frame_streams: Sequence[int]) -> list[tuple[HashResult, list[int]]]:
    """One HashResult per video stream (the video rule holds within one stream, as the
    temporal rules do), its frames renumbered 0..n-1, with each one's request frame index."""

    def stream(index: int) -> int:
        return frame_streams[index] if index < len(frame_streams) else -1

    parts = []
    for which in sorted({stream(f.index) for f in hashes.frames}):
        frames = sorted((f for f in hashes.frames if stream(f.index) == which), key=lambda f: f.index)
        renumber = {f.index: i for i, f in enumerate(frames)}
        part = hashes.model_copy(
            update={
                "frames": [f.model_copy(update={"index": renumber[f.index]}) for f in frames],
                "matches": [
                    m.model_copy(update={"frame_index": renumber[m.frame_index]})
                    for m in hashes.matches
                    if m.frame_index in renumber
                ],
            }
        )
        parts.append((part, [f.index for f in frames]))
    return parts


def video_findings(
    policy: Policy,
    hashes: HashResult | None,
    *,
    duration_ms: int | None = None,
    frame_streams: Sequence[int] = (),
) -> list[VideoFinding]:
    """The policy's video rule over the request's PDQ matches: per bank (and video stream),
    fired findings first. Frame indexes in the findings are the request's (all streams)."""
    if hashes is None or not hashes.matches:
        return []
    if len(set(frame_streams)) <= 1:
        return evaluate_video(policy, hashes, duration_ms=duration_ms)
    findings = []
    for part, request_index in _per_stream(hashes, frame_streams):
        for finding in evaluate_video(policy, part, duration_ms=duration_ms):
            # Back to request frame indexes: the evidence names frames as the verdict numbers them.
            matches = tuple(
                m.model_copy(update={"frame_index": request_index[m.frame_index]}) for m in finding.matches
            )
            findings.append(dataclasses.replace(finding, matches=matches))
    return sorted(findings, key=lambda f: (not f.fired, f.action != BankAction.BLOCK, -f.matched_seconds))


def bank_match_proto(
    *,
    bank: str,
    entry_id: str,
    signal_type: str,
    action: BankAction,
    distance: int = 0,
    content_id: str = "",
    content_ms: int | None = None,
) -> pb.BankMatch:
    return pb.BankMatch(
        bank=bank,
        entry_id=entry_id,
        signal_type=signal_type,
        distance=distance,
        content_id=content_id,
        content_ms=-1 if content_ms is None else content_ms,
        action=action.value,
    )


def frame_evidence(
    policy: Policy,
    finding: VideoFinding,
    match: HashMatch,
    seconds: float,
    stream_index: int,
) -> pb.Evidence:
    """One matched frame as evidence: its time, the entry it matched and how closely."""
    return pb.Evidence(
        category=finding.category,
        score=action_score(policy, finding.category, finding.action),
        modality=pb.MODALITY_VISUAL,
        source=pb.SOURCE_FRAME,
        start_ms=max(0, match.timestamp_ms),
        end_ms=max(0, match.timestamp_ms + round(seconds * 1000)),
        snippet=f"bank {finding.bank}: entry {match.entry_id} at PDQ distance {match.distance}",
        frame_index=match.frame_index,
        span_start=-1,
        span_end=-1,
        signal=SIGNAL,
        stream_index=stream_index,
        bank_match=bank_match_proto(
            bank=finding.bank,
            entry_id=match.entry_id,
            signal_type="pdq",
            action=finding.action,
            distance=match.distance,
            content_id=match.content_id,
            content_ms=match.content_ms,
        ),
    )


def exact_evidence(policy: Policy, finding: ExactFinding, content_id: str = "") -> pb.Evidence:
    """The uploaded bytes as evidence: an MD5/SHA-256 equal to a bank entry's (no frame, no time)."""
    return pb.Evidence(
        category=finding.category,
        score=action_score(policy, finding.category, finding.action),
        modality=pb.MODALITY_VISUAL,
        source=pb.SOURCE_FRAME,
        snippet=f"bank {finding.bank}: entry {finding.entry_id}, {finding.signal_type.value} of the upload",
        frame_index=-1,
        span_start=-1,
        span_end=-1,
        signal=SIGNAL,
        stream_index=-1,
        bank_match=bank_match_proto(
            bank=finding.bank,
            entry_id=finding.entry_id,
            signal_type=finding.signal_type.value,
            action=finding.action,
            content_id=content_id,
        ),
    )


def exact_reason(finding: ExactFinding) -> str:
    return (
        f"known content: the upload's {finding.signal_type.value} is entry {finding.entry_id} of bank "
        f"{finding.bank} ({finding.category}): {finding.action.value}"
    )


def _video_evidence(
    policy: Policy,
    finding: VideoFinding,
    hashes: HashResult,
    frame_streams: Sequence[int],
    duration_ms: int | None,
) -> list[pb.Evidence]:
    # The time each frame stands for: up to the next frame of its own video stream.
    seconds: dict[int, float] = {}
    for part, request_index in _per_stream(hashes, frame_streams):
        stands_for = frame_seconds([f.timestamp_ms for f in part.frames], duration_ms)
        seconds.update(zip(request_index, stands_for.tolist(), strict=True))
    return [
        frame_evidence(
            policy,
            finding,
            match,
            seconds.get(match.frame_index, 0.0),
            frame_streams[match.frame_index] if match.frame_index < len(frame_streams) else -1,
        )
        for match in finding.matches[:MAX_FRAMES_PER_BANK]
    ]


def _raise_category(categories: list[pb.CategoryScore], category: str, score: float, decision: int) -> None:
    for entry in categories:
        if entry.category == category:
            entry.score = max(entry.score, score)
            entry.decision = max(entry.decision, decision)
            entry.by_modality["VISUAL"] = max(entry.by_modality.get("VISUAL", 0.0), score)
            return
    categories.append(
        pb.CategoryScore(category=category, score=score, decision=decision, by_modality={"VISUAL": score})
    )


def with_bank_findings(
    fused: Fused,
    policy: Policy,
    video: Sequence[VideoFinding],
    exact: Sequence[ExactFinding] = (),
    *,
    hashes: HashResult | None = None,
    frame_streams: Sequence[int] = (),
    duration_ms: int | None = None,
) -> Fused:
    """`fused` with the bank findings applied: evidence first, the decision at least each fired
    bank's action, a reason per finding (one under its rule too)."""
    if not video and not exact:
        return fused
    evidence: list[pb.Evidence] = []
    reasons: list[str] = []
    categories = [pb.CategoryScore.FromString(c.SerializeToString()) for c in fused.categories]
    decision, risk = fused.decision, fused.risk
    for finding in exact:
        evidence.append(exact_evidence(policy, finding))
        reasons.append(exact_reason(finding) + " (the policy does not short-circuit this bank)")
    for finding in video:
        if not finding.fired:
            reasons.append(f"bank {finding.bank}: {finding.reason}: under the rule, no action")
            continue
        if hashes is not None:
            evidence += _video_evidence(policy, finding, hashes, frame_streams, duration_ms)
        start, end = finding.span_ms
        reasons.append(
            f"known content: bank {finding.bank} ({finding.category}) matched {finding.reason} "
            f"(frames {start / 1000:.1f}-{end / 1000:.1f} s): {finding.action.value}"
        )
    acting = [(f.category, f.action) for f in exact] + [(f.category, f.action) for f in video if f.fired]
    for category, action in acting:
        score = action_score(policy, category, action)
        _raise_category(categories, category, score, DECISION_OF[action])
        decision, risk = max(decision, DECISION_OF[action]), max(risk, score)
    for finding in [*exact, *(f for f in video if f.fired)]:
        signal = finding.signal_type.value if isinstance(finding, ExactFinding) else "pdq"
        metrics.BANK_MATCHES.labels(finding.bank, signal).inc()
    kept = [r for r in fused.reasons if not (acting and r == _NOTHING)]
    return dataclasses.replace(
        fused,
        decision=decision,
        risk=risk,
        categories=categories,
        evidence=[*evidence, *fused.evidence],
        reasons=[*reasons, *kept],
    )


def _categories(policy: Policy, acting: list[ExactFinding]) -> list[pb.CategoryScore]:
    scores: dict[str, tuple[float, int]] = {}
    for finding in acting:
        score, decision = action_score(policy, finding.category, finding.action), DECISION_OF[finding.action]
        held = scores.get(finding.category, (0.0, pb.DECISION_ALLOW))
        scores[finding.category] = (max(held[0], score), max(held[1], decision))
    categories = []
    for name in policy.categories:
        score, decision = scores.get(name, (0.0, pb.DECISION_ALLOW))
        by_modality = {"VISUAL": score} if name in scores else {}
        categories.append(
            pb.CategoryScore(category=name, score=score, decision=decision, by_modality=by_modality)
        )
    return categories


def short_circuit_fused(policy: Policy, findings: list[ExactFinding]) -> Fused:
    """The decision of an upload found in a bank that decides alone (also replay's, from the
    findings the verdict store kept)."""
    acting = [f for f in findings if f.short_circuit]
    first = acting[0]
    why = (
        f"short-circuit: {first.signal_type.value} of the upload is in bank {first.bank} "
        f"(entry {first.entry_id})"
    )
    modalities = [
        pb.ModalityStatus(modality=m, state=pb.MODALITY_STATE_SKIPPED, reason=f"{why}; not run")
        for m in (pb.MODALITY_AUDIO, pb.MODALITY_VISUAL, pb.MODALITY_TEXT)
    ]
    reasons = [exact_reason(f) for f in findings]
    reasons.append(f"{why}: verdict before splitting; skipped: {SHORT_CIRCUIT_SKIPS}")
    categories = _categories(policy, acting)
    return Fused(
        decision=max(DECISION_OF[f.action] for f in acting),
        risk=max(c.score for c in categories),
        categories=categories,
        evidence=[exact_evidence(policy, f) for f in findings],
        modalities=modalities,
        reasons=reasons,
        degraded=False,
    )
