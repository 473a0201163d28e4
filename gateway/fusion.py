"""Fusion: turn the services' scores into a policy decision.

Pure and synchronous (no I/O), so every rule here is unit-tested without processes. The
inputs are what the orchestrator collected per modality; the output is the decision part of
the public `Verdict` (categories, evidence, modality statuses, reasons, degraded).

Rules, all read from the policy:
- A modality's category score is the highest score of its items (text items, transcript
  segments) or, for frames, the highest level sustained by the category's temporal rule.
- Each modality score is multiplied by the policy's modality weight; a category's fused score
  is the max over the modalities that counted (or noisy-or, if the policy says so).
- Only modalities in state OK count. UNCALIBRATED scores never reach a decision; FAILED /
  TIMED_OUT / UNCALIBRATED modalities apply the policy's failure action (ignore, review, error).
- `degraded`: something the policy needed did not run: a FAILED or TIMED_OUT modality (any
  action), or an UNCALIBRATED one whose action is not `ignore`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from modgate.policy import FailureAction, Modality, Policy, VisionRule
from modgate.v1 import moderation_pb2 as pb
from modgate.wire import FrameScore, ModelInfo, TextItem, TextItemResult

from .snippets import matched_words, short_snippet

# Evidence below this share of a category's review threshold is noise, not evidence.
EVIDENCE_FLOOR_SHARE = 0.5
MAX_EVIDENCE = 50


class State(StrEnum):
    OK = "OK"
    SKIPPED = "SKIPPED"
    FAILED = "FAILED"
    TIMED_OUT = "TIMED_OUT"
    UNCALIBRATED = "UNCALIBRATED"


STATE_PB = {
    State.OK: pb.MODALITY_STATE_OK,
    State.SKIPPED: pb.MODALITY_STATE_SKIPPED,
    State.FAILED: pb.MODALITY_STATE_FAILED,
    State.TIMED_OUT: pb.MODALITY_STATE_TIMED_OUT,
    State.UNCALIBRATED: pb.MODALITY_STATE_UNCALIBRATED,
}
MODALITY_PB = {
    Modality.AUDIO: pb.MODALITY_AUDIO,
    Modality.VISUAL: pb.MODALITY_VISUAL,
    Modality.TEXT: pb.MODALITY_TEXT,
}
SOURCE_PB = {
    "transcript": pb.SOURCE_TRANSCRIPT,
    "subtitle": pb.SOURCE_SUBTITLE,
    "title": pb.SOURCE_TITLE,
    "description": pb.SOURCE_DESCRIPTION,
    "hashtag": pb.SOURCE_HASHTAG,
    "caption": pb.SOURCE_CAPTION,
    "metadata": pb.SOURCE_METADATA,
    "on_screen_text": pb.SOURCE_ON_SCREEN_TEXT,
}
ON_SCREEN = "on_screen_text"  # read from frames by vision's OCR: VISUAL, signal "ocr"
DECISION_NAMES = {pb.DECISION_ALLOW: "ALLOW", pb.DECISION_REVIEW: "REVIEW", pb.DECISION_BLOCK: "BLOCK"}


class NoVerdict(Exception):
    """The policy forbids a degraded verdict here (failure action `error`)."""

    def __init__(self, message: str, *, timed_out: bool) -> None:
        super().__init__(message)
        self.timed_out = timed_out


@dataclass
class ModalityOutcome:
    """What happened to one modality; scores are attached only when state is OK or UNCALIBRATED."""

    modality: Modality
    state: State
    reason: str = ""
    latency_ms: float = 0.0
    model: ModelInfo | None = None
    variant: str = "stable"
    items: int = 0
    ocr_frames: tuple[int, int] = (0, 0)  # VISUAL: (frames whose text was read, frames with text)
    languages: str = ""  # AUDIO: the language heard per track, comma-separated


@dataclass
class ScoredText:
    """A text item as sent to the text service plus the service's result for it."""

    item: TextItem
    result: TextItemResult
    model: ModelInfo


@dataclass
class FusionInput:
    policy: Policy
    outcomes: dict[Modality, ModalityOutcome]
    texts: list[ScoredText] = field(default_factory=list)  # TEXT sources and transcript (AUDIO)
    frames: list[FrameScore] = field(default_factory=list)
    frame_model: ModelInfo | None = None
    frame_interval_ms: int = 1000  # sampling interval, the end time of a frame's evidence
    # The container stream behind text items (by id: subtitle cues, each audio track's
    # transcript) and frames (by FrameScore.index); evidence reports it (-1: none).
    item_streams: dict[str, int] = field(default_factory=dict)
    frame_streams: list[int] = field(default_factory=list)

    def frame_stream(self, frame: FrameScore) -> int:
        return self.frame_streams[frame.index] if 0 <= frame.index < len(self.frame_streams) else -1


@dataclass
class Fused:
    decision: int
    risk: float
    categories: list[pb.CategoryScore]
    evidence: list[pb.Evidence]
    modalities: list[pb.ModalityStatus]
    reasons: list[str]
    degraded: bool


@dataclass
class _Candidate:
    category: str
    modality: Modality
    score: float  # weighted contribution
    evidence: pb.Evidence


def decide(score: float, review: float, block: float) -> int:
    if score >= block:
        return pb.DECISION_BLOCK
    if score >= review:
        return pb.DECISION_REVIEW
    return pb.DECISION_ALLOW


def sustained_level(frames: Sequence[tuple[int, float]], rule: VisionRule) -> tuple[float, list[int]]:
    """The highest score reached by >= min_frames frames, or held for >= min_seconds.

    `frames` are (timestamp_ms, score) in time order. Returns the level and the positions of
    the frames at or above it. A single spike therefore counts only as high as the rule's
    k-th best frame, so one odd frame cannot block a video whose rule asks for two.
    """
    if not frames:
        return 0.0, []
    ranked = sorted((score for _, score in frames), reverse=True)
    level = ranked[rule.min_frames - 1] if len(ranked) >= rule.min_frames else 0.0
    if rule.min_seconds > 0:
        span_ms = rule.min_seconds * 1000.0
        for start in range(len(frames)):
            low = frames[start][1]
            for end in range(start, len(frames)):
                low = min(low, frames[end][1])
                if low <= level:
                    break
                if frames[end][0] - frames[start][0] >= span_ms:
                    level = low
                    break
    if level <= 0.0:
        return 0.0, []
    return level, [i for i, (_, score) in enumerate(frames) if score >= level]


def _model_ref(model: ModelInfo | None, variant: str) -> pb.ModelRef:
    if model is None:
        return pb.ModelRef(variant=variant)
    return pb.ModelRef(name=model.name, version=model.version, variant=variant)


def _text_modality(item: TextItem) -> Modality:
    if item.source == ON_SCREEN:
        return Modality.VISUAL
    return Modality.AUDIO if item.source == "transcript" else Modality.TEXT


def _text_candidates(
    texts: Iterable[ScoredText], policy: Policy, weights: dict[Modality, float], streams: dict[str, int]
) -> tuple[dict[tuple[str, Modality], float], list[_Candidate]]:
    best: dict[tuple[str, Modality], float] = {}
    candidates: list[_Candidate] = []
    for scored in texts:
        modality = _text_modality(scored.item)
        on_screen = scored.item.source == ON_SCREEN
        # On-screen text has its own weight: the VISUAL one weighs the CLIP frame scores.
        weight = policy.ocr.weight if on_screen else weights.get(modality, 1.0)
        for category, raw in scored.result.scores.items():
            if category not in policy.categories:
                continue  # a service holding a newer policy may know categories we do not
            weighted = raw * weight
            key = (category, modality)
            best[key] = max(best.get(key, 0.0), weighted)
            floor = policy.categories[category].thresholds.review * EVIDENCE_FLOOR_SHARE
            if weighted <= 0.0 or weighted < floor:
                continue
            match = next((m for m in scored.result.matches if m.category == category), None)
            signal = "ocr" if on_screen else match.signal if match else "semantic"
            snippet = short_snippet(scored.item.text) if on_screen else matched_words(scored.item.text, match)
            evidence = pb.Evidence(
                category=category,
                score=weighted,
                modality=MODALITY_PB[modality],
                source=SOURCE_PB.get(scored.item.source, pb.SOURCE_UNSPECIFIED),
                start_ms=max(0, scored.item.start_ms or 0),
                end_ms=max(0, scored.item.end_ms or 0),
                snippet=snippet,
                frame_index=-1,
                # The text model scored it (transcript too): its variant, not the speech route's.
                model=_model_ref(scored.model, scored.model.variant),
                span_start=match.span_start if match and match.span_start is not None else -1,
                span_end=match.span_end if match and match.span_end is not None else -1,
                signal=signal,
                stream_index=streams.get(scored.item.id, -1),
            )
            candidates.append(_Candidate(category, modality, weighted, evidence))
    return best, candidates


def _frame_series(inp: FusionInput) -> dict[int, list[FrameScore]]:
    """The frames of each video stream, in time order: the temporal rules hold within one
    stream (two streams showing the same moment are not two frames of it)."""
    series: dict[int, list[FrameScore]] = {}
    for frame in sorted(inp.frames, key=lambda f: (f.timestamp_ms, f.index)):
        series.setdefault(inp.frame_stream(frame), []).append(frame)
    return series


def _visual_candidates(
    inp: FusionInput, weight: float, variant: str
) -> tuple[dict[tuple[str, Modality], float], list[_Candidate], list[str]]:
    best: dict[tuple[str, Modality], float] = {}
    candidates: list[_Candidate] = []
    notes: list[str] = []
    streams = _frame_series(inp)
    for category, rule in inp.policy.vision_categories().items():
        review = inp.policy.categories[category].thresholds.review
        level, peak = 0.0, 0.0
        for stream, frames in streams.items():
            series = [(f.timestamp_ms, f.scores.get(category, 0.0)) for f in frames]
            stream_level, hits = sustained_level(series, rule)
            level, peak = max(level, stream_level), max([peak, *(s for _, s in series)])
            if stream_level * weight <= 0.0 or stream_level * weight < review * EVIDENCE_FLOOR_SHARE:
                continue
            for pos in hits:
                evidence = _frame_evidence(inp, frames[pos], category, weight, variant, stream)
                candidates.append(_Candidate(category, Modality.VISUAL, evidence.score, evidence))
        if peak >= review and level < review:
            notes.append(
                f"VISUAL {category}: a frame scored {peak:.2f} but the temporal rule needs "
                f">= {rule.min_frames} frames"
                + (f" or >= {rule.min_seconds:g} s" if rule.min_seconds > 0 else "")
                + f"; counted {level * weight:.2f}"
            )
        best[(category, Modality.VISUAL)] = level * weight
    return best, candidates, notes


def _frame_evidence(
    inp: FusionInput, frame: FrameScore, category: str, weight: float, variant: str, stream: int
) -> pb.Evidence:
    return pb.Evidence(
        category=category,
        score=frame.scores.get(category, 0.0) * weight,
        modality=pb.MODALITY_VISUAL,
        source=pb.SOURCE_FRAME,
        start_ms=max(0, frame.timestamp_ms),
        end_ms=max(0, frame.timestamp_ms + inp.frame_interval_ms),
        snippet=frame.best_prompts.get(category, ""),
        frame_index=frame.index,
        model=_model_ref(inp.frame_model, variant),
        span_start=-1,
        span_end=-1,
        signal="zero-shot",
        stream_index=stream,
    )


def _combine(scores: Iterable[float], method: str) -> float:
    values = [min(1.0, max(0.0, s)) for s in scores]
    if not values:
        return 0.0
    if method == "noisy_or":
        return 1.0 - math.prod(1.0 - v for v in values)
    return max(values)


def _failure_action(policy: Policy, state: State) -> FailureAction | None:
    if state == State.FAILED:
        return policy.failure.on_failed
    if state == State.TIMED_OUT:
        return policy.failure.on_timeout
    if state == State.UNCALIBRATED:
        return policy.failure.on_uncalibrated
    return None


_FAILURE_FIELD = {
    State.FAILED: "on_failed",
    State.TIMED_OUT: "on_timeout",
    State.UNCALIBRATED: "on_uncalibrated",
}


def fuse(inp: FusionInput) -> Fused:
    """Decide. Raises NoVerdict when a failed modality's policy action is `error`."""
    policy = inp.policy
    weights = {m: w for m, w in policy.fusion.modality_weights.items()}
    counted = {m for m, o in inp.outcomes.items() if o.state == State.OK}
    variants = {m: o.variant for m, o in inp.outcomes.items()}
    reasons: list[str] = []
    # On-screen text counts when vision answered, calibrated CLIP weights or not.
    visual = inp.outcomes.get(Modality.VISUAL)
    text_counted = counted | (
        {Modality.VISUAL} if visual and visual.state in (State.OK, State.UNCALIBRATED) else set()
    )

    best, candidates = _text_candidates(
        (t for t in inp.texts if _text_modality(t.item) in text_counted), policy, weights, inp.item_streams
    )
    if Modality.VISUAL in counted:
        v_best, v_candidates, notes = _visual_candidates(
            inp, weights.get(Modality.VISUAL, 1.0), variants.get(Modality.VISUAL, "stable")
        )
        best.update({key: max(best.get(key, 0.0), score) for key, score in v_best.items()})
        candidates.extend(v_candidates)
        reasons.extend(notes)

    categories, category_scores, decision = _categories(policy, best, text_counted, reasons)
    decision, degraded = _apply_failures(policy, inp.outcomes, decision, reasons)
    # Highest contribution first; among equals, the category closer to acting, then time order.
    candidates.sort(
        key=lambda c: (
            -c.score,
            -category_scores.get(c.category, 0.0),
            c.evidence.start_ms,
            c.evidence.frame_index,
        )
    )
    if not reasons:
        reasons.append("no category reached its review threshold")
    return Fused(
        decision=decision,
        risk=max(category_scores.values(), default=0.0),
        categories=categories,
        evidence=[c.evidence for c in candidates[:MAX_EVIDENCE]],
        modalities=_modality_statuses(inp.outcomes),
        reasons=reasons,
        degraded=degraded,
    )


def _categories(
    policy: Policy, best: dict[tuple[str, Modality], float], counted: set[Modality], reasons: list[str]
) -> tuple[list[pb.CategoryScore], dict[str, float], int]:
    """Each category's fused score and decision, and the overall decision; appends why a
    category acts to `reasons`. Scores are returned as computed (the proto holds float32)."""
    categories: list[pb.CategoryScore] = []
    scores: dict[str, float] = {}
    decision = pb.DECISION_ALLOW
    grouped: dict[str, dict[str, float]] = {}  # one pass, not one per category: replay's hot loop
    for (c, m), s in best.items():
        if m in counted:
            grouped.setdefault(c, {})[m.value] = s
    for name, category in policy.categories.items():
        by_modality = grouped.get(name, {})
        score = _combine(by_modality.values(), policy.fusion.method)
        cat_decision = decide(score, category.thresholds.review, category.thresholds.block)
        scores[name] = score
        categories.append(
            pb.CategoryScore(category=name, score=score, decision=cat_decision, by_modality=by_modality)
        )
        if cat_decision != pb.DECISION_ALLOW:
            top = max(by_modality, key=lambda m: by_modality[m])
            limit = (
                category.thresholds.block if cat_decision == pb.DECISION_BLOCK else category.thresholds.review
            )
            label = "block" if cat_decision == pb.DECISION_BLOCK else "review"
            reasons.append(f"{name} {score:.2f} >= {label} threshold {limit:.2f} (strongest: {top})")
        decision = max(decision, cat_decision)
    return categories, scores, decision


def _apply_failures(
    policy: Policy, outcomes: dict[Modality, ModalityOutcome], decision: int, reasons: list[str]
) -> tuple[int, bool]:
    """The policy's failure action for every modality that did not count; (decision, degraded)."""
    degraded = False
    for modality, outcome in sorted(outcomes.items()):
        action = _failure_action(policy, outcome.state)
        if action is None:
            continue
        # Degraded = something the policy needed did not run. A modality that failed or timed
        # out always is; an uncalibrated one only when the policy counts on it (on_uncalibrated
        # review/error): with `ignore` the policy decides without it by design, and every local
        # stack (no CLIP weights) would otherwise report every video verdict degraded.
        if outcome.state != State.UNCALIBRATED or action != FailureAction.IGNORE:
            degraded = True
        what = f"{modality.value} {outcome.state.value}" + (f" ({outcome.reason})" if outcome.reason else "")
        rule = f"failure.{_FAILURE_FIELD[outcome.state]}={action.value}"
        if action == FailureAction.ERROR:
            raise NoVerdict(
                f"{what}; policy {policy.name} forbids a degraded verdict ({rule})",
                timed_out=outcome.state == State.TIMED_OUT,
            )
        if action == FailureAction.REVIEW:
            if decision < pb.DECISION_REVIEW:
                decision = pb.DECISION_REVIEW
            reasons.append(f"{what}: at least REVIEW ({rule})")
        else:
            reasons.append(f"{what}: left out of the decision ({rule})")
    return decision, degraded


def _modality_statuses(outcomes: dict[Modality, ModalityOutcome]) -> list[pb.ModalityStatus]:
    return [
        pb.ModalityStatus(
            modality=MODALITY_PB[m],
            state=STATE_PB[o.state],
            reason=o.reason,
            latency_ms=max(0, round(o.latency_ms)),
            model=_model_ref(o.model, o.variant),
            items=max(0, o.items),
            frames_read=max(0, o.ocr_frames[0]),
            frames_with_text=max(0, o.ocr_frames[1]),
            languages=o.languages,
        )
        for m, o in sorted(outcomes.items(), key=lambda kv: MODALITY_PB[kv[0]])
    ]
