"""The policy applied to bank matches: the video rule for PDQ frames, the exact short-circuit.

    result = merge_hash_results([vision_result.hashes, ...])   # one per vision request
    for finding in evaluate_video(policy, result, duration_ms=media.info.duration_ms):
        if finding.fired: ...   # evidence VISUAL / FRAME / signal "hash", finding.action

    for finding in evaluate_exact(policy, matcher.match_exact(md5=..., sha256=...)):
        if finding.short_circuit: ...  # verdict before splitting or calling any model

Matched seconds: each sampled frame stands for the time from its timestamp to the next
frame's (the last one: to the media's end when known, else the median sampling interval).
The fraction counts matched frames among the frames at or above the bank's quality floor.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from modgate.banks.matcher import ExactHit
from modgate.banks.signals import SignalType
from modgate.policy import BankAction, BankRule, Policy, VideoMatchRule
from modgate.wire import BankRef, FrameHash, HashMatch, HashResult


@dataclass(frozen=True)
class VideoFinding:
    """What one bank's PDQ matches add up to for one video."""

    bank: str
    category: str
    action: BankAction
    fired: bool  # the policy's video rule is met
    matches: tuple[HashMatch, ...]  # the closest match of each matched frame, in time order
    frames_matched: int
    frames_considered: int  # frames at or above the bank's quality floor
    matched_fraction: float
    matched_seconds: float
    reason: str  # e.g. "17 of 20 frames (85%), 17.0 s matched; rule: >= 25% or >= 3.0 s"

    @property
    def span_ms(self) -> tuple[int, int]:
        """First and last matched frame times."""
        return self.matches[0].timestamp_ms, self.matches[-1].timestamp_ms


@dataclass(frozen=True)
class ExactFinding:
    bank: str
    category: str
    action: BankAction
    signal_type: SignalType
    entry_id: str
    short_circuit: bool  # the policy lets this hit decide before splitting or any model


def merge_hash_results(results: Sequence[HashResult | None]) -> HashResult | None:
    """One HashResult for a video whose frames went to the vision service in several requests
    (in order): frame indexes are renumbered to the whole video's."""
    present = [r for r in results if r is not None]
    if not present:
        return None
    frames: list[FrameHash] = []
    matches: list[HashMatch] = []
    banks: dict[str, BankRef] = {}
    notes: list[str] = []
    for result in present:
        offset = len(frames)
        frames += [f.model_copy(update={"index": f.index + offset}) for f in result.frames]
        matches += [m.model_copy(update={"frame_index": m.frame_index + offset}) for m in result.matches]
        banks.update({b.name: b for b in result.banks})
        notes += [n for n in result.notes if n not in notes]
    return HashResult(frames=frames, matches=matches, banks=list(banks.values()), notes=notes)


def frame_seconds(timestamps_ms: Sequence[int], duration_ms: int | None = None) -> np.ndarray:
    """Seconds each frame stands for (see the module docstring)."""
    times = np.asarray(timestamps_ms, dtype=np.float64)
    if len(times) == 0:
        return times
    gaps = np.diff(times)
    typical = float(np.median(gaps)) if len(gaps) else 0.0
    last = max(float(duration_ms) - times[-1], 0.0) if duration_ms is not None else typical
    return np.append(gaps, last) / 1000.0


def _rule_met(rule: VideoMatchRule, fraction: float, seconds: float) -> bool:
    checks = []
    if rule.min_fraction is not None:
        checks.append(fraction >= rule.min_fraction)
    if rule.min_seconds is not None:
        checks.append(seconds >= rule.min_seconds)
    if not checks:
        return True
    return all(checks) if rule.require == "all" else any(checks)


def _describe_rule(rule: VideoMatchRule) -> str:
    parts = []
    if rule.min_fraction is not None:
        parts.append(f">= {rule.min_fraction:.0%}")
    if rule.min_seconds is not None:
        parts.append(f">= {rule.min_seconds:.1f} s")
    return f" {'and' if rule.require == 'all' else 'or'} ".join(parts) or "any matched frame"


def _finding(
    bank: str, rule: BankRule, result: HashResult, seconds: np.ndarray, matched: list[HashMatch]
) -> VideoFinding:
    by_frame: dict[int, HashMatch] = {}
    for match in matched:
        best = by_frame.get(match.frame_index)
        if best is None or match.distance < best.distance:
            by_frame[match.frame_index] = match
    closest = tuple(sorted(by_frame.values(), key=lambda m: m.timestamp_ms))
    considered = sum(1 for f in result.frames if f.pdq and f.quality >= rule.pdq_min_quality)
    fraction = len(closest) / considered if considered else 0.0
    matched_s = float(sum(seconds[m.frame_index] for m in closest))
    reason = (
        f"{len(closest)} of {considered} frames ({fraction:.0%}), {matched_s:.1f} s matched; "
        f"rule: {_describe_rule(rule.video)}"
    )
    return VideoFinding(
        bank=bank,
        category=rule.category,
        action=rule.action,
        fired=_rule_met(rule.video, fraction, matched_s),
        matches=closest,
        frames_matched=len(closest),
        frames_considered=considered,
        matched_fraction=fraction,
        matched_seconds=matched_s,
        reason=reason,
    )


def evaluate_video(
    policy: Policy, result: HashResult | None, *, duration_ms: int | None = None
) -> list[VideoFinding]:
    """One finding per policy bank with at least one matched frame (fired or not), strongest first."""
    if result is None or not result.matches:
        return []
    ordered = sorted(result.frames, key=lambda f: f.index)
    if [f.index for f in ordered] != list(range(len(ordered))):
        raise ValueError("frame indexes must be 0..N-1: merge per-request results with merge_hash_results")
    seconds = frame_seconds([f.timestamp_ms for f in ordered], duration_ms)
    findings = []
    for bank, rule in policy.banks.items():
        matched = [m for m in result.matches if m.bank == bank]
        if matched:
            findings.append(
                _finding(bank, rule, result.model_copy(update={"frames": ordered}), seconds, matched)
            )
    return sorted(findings, key=lambda f: (not f.fired, f.action != BankAction.BLOCK, -f.matched_seconds))


def evaluate_exact(policy: Policy, hits: Sequence[ExactHit]) -> list[ExactFinding]:
    """The exact hits in banks the policy names, BLOCK before REVIEW, short-circuiting ones first."""
    findings = [
        ExactFinding(
            bank=hit.bank,
            category=rule.category,
            action=rule.action,
            signal_type=hit.signal_type,
            entry_id=hit.entry.entry_id,
            short_circuit=rule.exact_short_circuit,
        )
        for hit in hits
        if (rule := policy.banks.get(hit.bank)) is not None
    ]
    return sorted(findings, key=lambda f: (not f.short_circuit, f.action != BankAction.BLOCK, f.bank))
