"""Fusion rules on the real default policy and small purpose-built policies (no processes)."""

from __future__ import annotations

import pytest

from gateway.fusion import (
    FusionInput,
    ModalityOutcome,
    NoVerdict,
    ScoredText,
    State,
    fuse,
    sustained_level,
)
from modgate.policy import Modality, Policy, VisionRule, load_policies, parse_policy
from modgate.v1 import moderation_pb2 as pb
from modgate.wire import FrameScore, ModelInfo, TextItem, TextItemResult, TextMatch

TEXT_MODEL = ModelInfo(name="all-MiniLM-L6-v2", version="abc123", variant="stable")
CLIP = ModelInfo(name="ViT-B-32", version="random", variant="stable", calibrated=False)


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policies()["default"]


def small_policy(**overrides: object) -> Policy:
    data: dict = {
        "name": "small",
        "version": "1",
        "neutral": {"vision_prompts": ["a photo"], "text_exemplars": ["hello"]},
        "profanity": {"enabled": False},
        "categories": {
            "violence": {
                "description": "v",
                "thresholds": {"review": 0.5, "block": 0.85},
                "vision": {"prompts": ["a fight"], "min_frames": 2, "min_seconds": 1.0},
                "text": {"exemplars": ["I will hurt you"]},
            },
            "spam": {"description": "s", "thresholds": {"review": 0.5, "block": 0.9}, "text": {}},
        },
    }
    data.update(overrides)
    return parse_policy(data)


def text(
    item_id: str,
    content: str,
    source: str,
    scores: dict[str, float],
    *,
    start: int | None = None,
    end: int | None = None,
    matches: list[TextMatch] | None = None,
) -> ScoredText:
    return ScoredText(
        item=TextItem(id=item_id, text=content, source=source, start_ms=start, end_ms=end),  # type: ignore[arg-type]
        result=TextItemResult(id=item_id, scores=scores, matches=matches or []),
        model=TEXT_MODEL,
    )


def ok(*modalities: Modality) -> dict[Modality, ModalityOutcome]:
    return {m: ModalityOutcome(m, State.OK) for m in modalities}


def frames(scores: list[float], category: str = "violence", step_ms: int = 1000) -> list[FrameScore]:
    return [
        FrameScore(
            index=i, timestamp_ms=i * step_ms, scores={category: s}, best_prompts={category: "a fight"}
        )
        for i, s in enumerate(scores)
    ]


def category(fused, name: str) -> pb.CategoryScore:  # type: ignore[no-untyped-def]
    return next(c for c in fused.categories if c.category == name)


def test_threat_in_transcript_blocks_with_audio_evidence_at_its_time(policy: Policy) -> None:
    texts = [
        text(
            "t0",
            "I know where you live and I am coming for you",
            "transcript",
            {"violence": 0.93},
            start=3200,
            end=5900,
        ),
        text("s0", "Welcome to my cooking channel", "subtitle", {"violence": 0.05}, start=0, end=2000),
    ]
    fused = fuse(FusionInput(policy, ok(Modality.AUDIO, Modality.TEXT), texts=texts))
    assert fused.decision == pb.DECISION_BLOCK
    assert category(fused, "violence").decision == pb.DECISION_BLOCK
    assert dict(category(fused, "violence").by_modality) == pytest.approx({"AUDIO": 0.93, "TEXT": 0.05})
    top = fused.evidence[0]
    assert (top.modality, top.source, top.start_ms, top.end_ms) == (
        pb.MODALITY_AUDIO,
        pb.SOURCE_TRANSCRIPT,
        3200,
        5900,
    )
    assert top.snippet.startswith("I know where you live")
    assert top.frame_index == -1
    assert not fused.degraded
    assert fused.risk == pytest.approx(0.93)


def test_thresholds_give_allow_review_block(policy: Policy) -> None:
    for score, expected in [(0.2, pb.DECISION_ALLOW), (0.6, pb.DECISION_REVIEW), (0.9, pb.DECISION_BLOCK)]:
        fused = fuse(FusionInput(policy, ok(Modality.TEXT), texts=[text("a", "x", "title", {"hate": score})]))
        assert fused.decision == expected, score


def test_blocklist_evidence_keeps_span_and_term(policy: Policy) -> None:
    match = TextMatch(
        category="spam_scam",
        score=1.0,
        signal="blocklist",
        evidence="double your bitcoin",
        span_start=4,
        span_end=23,
    )
    texts = [text("d", "Now double your bitcoin fast", "description", {"spam_scam": 1.0}, matches=[match])]
    fused = fuse(FusionInput(policy, ok(Modality.TEXT), texts=texts))
    assert fused.decision == pb.DECISION_BLOCK
    ev = fused.evidence[0]
    assert (ev.signal, ev.snippet, ev.span_start, ev.span_end, ev.source) == (
        "blocklist",
        "double your bitcoin",
        4,
        23,
        pb.SOURCE_DESCRIPTION,
    )


def test_evidence_ordered_by_contribution_and_noise_dropped(policy: Policy) -> None:
    texts = [
        text("a", "mild", "title", {"harassment": 0.55}),
        text("b", "strong", "description", {"violence": 0.95}),
        text("c", "noise", "hashtag", {"drugs": 0.05}),
        text("d", "middle", "caption", {"hate": 0.7}, start=1000, end=2000),
    ]
    fused = fuse(FusionInput(policy, ok(Modality.TEXT), texts=texts))
    assert [e.snippet for e in fused.evidence] == ["strong", "middle", "mild"]
    scores = [e.score for e in fused.evidence]
    assert scores == sorted(scores, reverse=True)


def test_modality_weights_scale_contributions() -> None:
    pol = small_policy(
        fusion={"method": "max", "modality_weights": {"AUDIO": 0.5, "TEXT": 1.0, "VISUAL": 1.0}}
    )
    texts = [text("t", "I will hurt you", "transcript", {"violence": 0.9}, start=0, end=1000)]
    fused = fuse(FusionInput(pol, ok(Modality.AUDIO), texts=texts))
    assert category(fused, "violence").score == pytest.approx(0.45)
    assert fused.decision == pb.DECISION_ALLOW
    # The same signal through an unweighted modality blocks.
    texts = [text("t", "I will hurt you", "title", {"violence": 0.9})]
    assert fuse(FusionInput(pol, ok(Modality.TEXT), texts=texts)).decision == pb.DECISION_BLOCK


def test_noisy_or_combines_modalities() -> None:
    pol = small_policy(fusion={"method": "noisy_or"})
    texts = [
        text("t", "a", "transcript", {"violence": 0.4}, start=0, end=10),
        text("s", "b", "subtitle", {"violence": 0.4}, start=0, end=10),
    ]
    fused = fuse(FusionInput(pol, ok(Modality.AUDIO, Modality.TEXT), texts=texts))
    assert category(fused, "violence").score == pytest.approx(1 - 0.6 * 0.6)
    assert fused.decision == pb.DECISION_REVIEW


# --- temporal rules -------------------------------------------------------------------------


def test_single_visual_spike_does_not_count_when_rule_needs_two_frames() -> None:
    pol = small_policy()
    fused = fuse(
        FusionInput(pol, ok(Modality.VISUAL), frames=frames([0.1, 0.95, 0.1, 0.1]), frame_model=CLIP)
    )
    assert fused.decision == pb.DECISION_ALLOW
    assert category(fused, "violence").score == pytest.approx(0.1)
    assert any("temporal rule" in r for r in fused.reasons)
    assert fused.evidence == []


def test_two_frames_satisfy_min_frames() -> None:
    pol = small_policy()
    fused = fuse(
        FusionInput(pol, ok(Modality.VISUAL), frames=frames([0.1, 0.95, 0.1, 0.9]), frame_model=CLIP)
    )
    assert category(fused, "violence").score == pytest.approx(0.9)
    assert fused.decision == pb.DECISION_BLOCK
    assert sorted(e.frame_index for e in fused.evidence) == [1, 3]
    assert {e.start_ms for e in fused.evidence} == {1000, 3000}
    assert all(e.modality == pb.MODALITY_VISUAL and e.signal == "zero-shot" for e in fused.evidence)


def test_min_seconds_counts_a_sustained_run_even_below_min_frames() -> None:
    rule = VisionRule(prompts=["x"], min_frames=5, min_seconds=1.0)
    # 3 frames at 500 ms spacing sustained at >= 0.8 for 1.0 s; min_frames (5) alone would give 0.
    level, hits = sustained_level([(0, 0.1), (500, 0.8), (1000, 0.9), (1500, 0.85), (2000, 0.1)], rule)
    assert level == pytest.approx(0.8)
    assert hits == [1, 2, 3]
    # The same frames spread so no run lasts a second: nothing sustained.
    level, _ = sustained_level([(0, 0.8), (400, 0.1), (800, 0.9), (1200, 0.1)], rule)
    assert level == pytest.approx(0.1)


def test_min_seconds_zero_means_frames_rule_only() -> None:
    rule = VisionRule(prompts=["x"], min_frames=1, min_seconds=0.0)
    assert sustained_level([(0, 0.2), (1000, 0.7)], rule)[0] == pytest.approx(0.7)
    assert sustained_level([], rule) == (0.0, [])


# --- failure behaviour ----------------------------------------------------------------------


def test_failed_modality_fail_closed_reviews_and_marks_degraded(policy: Policy) -> None:
    outcomes = ok(Modality.TEXT)
    outcomes[Modality.AUDIO] = ModalityOutcome(Modality.AUDIO, State.FAILED, reason="connection refused")
    fused = fuse(FusionInput(policy, outcomes, texts=[text("a", "hi", "title", {"violence": 0.01})]))
    assert policy.failure.on_failed.value == "review"
    assert fused.decision == pb.DECISION_REVIEW
    assert fused.degraded
    assert any("AUDIO FAILED (connection refused)" in r and "on_failed=review" in r for r in fused.reasons)
    audio = next(m for m in fused.modalities if m.modality == pb.MODALITY_AUDIO)
    assert audio.state == pb.MODALITY_STATE_FAILED and audio.reason == "connection refused"


def test_failed_modality_fail_open_ignores() -> None:
    pol = small_policy(failure={"on_failed": "ignore", "on_timeout": "ignore"})
    outcomes = ok(Modality.TEXT)
    outcomes[Modality.AUDIO] = ModalityOutcome(Modality.AUDIO, State.TIMED_OUT, reason="slow")
    fused = fuse(FusionInput(pol, outcomes, texts=[text("a", "hi", "title", {"violence": 0.01})]))
    assert fused.decision == pb.DECISION_ALLOW
    assert fused.degraded
    assert any("on_timeout=ignore" in r for r in fused.reasons)


def test_failure_action_error_gives_no_verdict() -> None:
    pol = small_policy(failure={"on_timeout": "error"})
    outcomes = {Modality.AUDIO: ModalityOutcome(Modality.AUDIO, State.TIMED_OUT, reason="slow")}
    with pytest.raises(NoVerdict) as err:
        fuse(FusionInput(pol, outcomes))
    assert err.value.timed_out
    assert "on_timeout=error" in str(err.value)


def test_uncalibrated_visual_is_kept_out_of_the_decision(policy: Policy) -> None:
    outcomes = ok(Modality.TEXT)
    outcomes[Modality.VISUAL] = ModalityOutcome(
        Modality.VISUAL, State.UNCALIBRATED, reason="no pretrained CLIP weights", model=CLIP
    )
    fused = fuse(
        FusionInput(
            policy,
            outcomes,
            texts=[text("a", "cooking", "title", {"violence": 0.02})],
            frames=frames([0.99, 0.99, 0.99]),
            frame_model=CLIP,
        )
    )
    assert fused.decision == pb.DECISION_ALLOW
    assert "VISUAL" not in category(fused, "violence").by_modality
    assert all(e.modality != pb.MODALITY_VISUAL for e in fused.evidence)
    # Changed on purpose (issue 21): with failure.on_uncalibrated=ignore the policy decides
    # without VISUAL by design, so nothing it needed is missing: not degraded. The modality
    # status and the reason still say VISUAL ran uncalibrated.
    assert policy.failure.on_uncalibrated.value == "ignore"
    assert not fused.degraded
    assert any("VISUAL UNCALIBRATED" in r and "on_uncalibrated=ignore" in r for r in fused.reasons)
    visual = next(m for m in fused.modalities if m.modality == pb.MODALITY_VISUAL)
    assert visual.state == pb.MODALITY_STATE_UNCALIBRATED


def test_uncalibrated_modality_the_policy_counts_on_is_degraded() -> None:
    pol = small_policy(failure={"on_uncalibrated": "review"})
    outcomes = ok(Modality.TEXT)
    outcomes[Modality.VISUAL] = ModalityOutcome(Modality.VISUAL, State.UNCALIBRATED, reason="random weights")
    fused = fuse(FusionInput(pol, outcomes, texts=[text("a", "hi", "title", {"violence": 0.01})]))
    assert fused.degraded
    assert fused.decision == pb.DECISION_REVIEW
    assert any("on_uncalibrated=review" in r for r in fused.reasons)


def test_a_failure_is_degraded_next_to_an_ignored_uncalibrated_modality(policy: Policy) -> None:
    outcomes = ok(Modality.TEXT)
    outcomes[Modality.VISUAL] = ModalityOutcome(Modality.VISUAL, State.UNCALIBRATED, reason="random weights")
    outcomes[Modality.AUDIO] = ModalityOutcome(Modality.AUDIO, State.TIMED_OUT, reason="slow")
    fused = fuse(FusionInput(policy, outcomes, texts=[text("a", "hi", "title", {"violence": 0.01})]))
    assert fused.degraded
    assert fused.decision == pb.DECISION_REVIEW


def test_skipped_modality_is_not_degraded(policy: Policy) -> None:
    outcomes = ok(Modality.TEXT)
    outcomes[Modality.VISUAL] = ModalityOutcome(Modality.VISUAL, State.SKIPPED, reason="no video stream")
    fused = fuse(FusionInput(policy, outcomes, texts=[text("a", "hello", "title", {})]))
    assert not fused.degraded
    assert fused.decision == pb.DECISION_ALLOW
    assert fused.reasons == ["no category reached its review threshold"]


def test_scores_of_failed_text_are_not_used(policy: Policy) -> None:
    # Transcript scores present, but AUDIO was declared FAILED (e.g. a policy mismatch): ignored.
    outcomes = {Modality.AUDIO: ModalityOutcome(Modality.AUDIO, State.FAILED, reason="policy mismatch")}
    texts = [text("t", "I will kill you", "transcript", {"violence": 0.99}, start=0, end=100)]
    fused = fuse(FusionInput(policy, outcomes, texts=texts))
    assert category(fused, "violence").score == 0.0
    assert fused.decision == pb.DECISION_REVIEW  # from on_failed=review, not from the score


def test_unknown_categories_from_a_service_are_ignored(policy: Policy) -> None:
    fused = fuse(
        FusionInput(policy, ok(Modality.TEXT), texts=[text("a", "x", "title", {"not_a_category": 1.0})])
    )
    assert fused.decision == pb.DECISION_ALLOW
