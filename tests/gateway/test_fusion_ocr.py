"""On-screen text in fusion and the verdict: VISUAL / "ocr" evidence with the recognized text and
its time span, its own policy weight, counted beside uncalibrated CLIP; the cues as items and
as the verdict's on_screen_text."""

from __future__ import annotations

from gateway.fusion import FusionInput, ModalityOutcome, State, fuse
from gateway.orchestrator.ocr import cue_items, frame_counts, on_screen_proto, read_on_screen
from modgate.policy import Modality
from modgate.v1 import moderation_pb2 as pb
from modgate.wire import ModelInfo, OcrCue, OcrResult, TextMatch
from tests.gateway.test_fusion import CLIP, category, frames, small_policy, text

OCR_MODEL = ModelInfo(name="PP-OCRv6-small", version="090f04ab-6f327246", variant="stable")
OFFER = "Send 0.1 BTC get 0.2 BTC back"


def on_screen(score: float, **kw: object) -> object:
    return text("ocr-0", OFFER, "on_screen_text", {"spam": score}, start=3000, end=6000, **kw)  # type: ignore[arg-type]


def outcomes(visual: State) -> dict[Modality, ModalityOutcome]:
    return {
        Modality.VISUAL: ModalityOutcome(Modality.VISUAL, visual, model=CLIP, ocr_frames=(8, 3)),
        Modality.TEXT: ModalityOutcome(Modality.TEXT, State.OK),
    }


def test_on_screen_text_is_visual_ocr_evidence_with_the_text_and_its_time_span() -> None:
    match = TextMatch(
        category="spam", signal="lexicon", evidence="0.1 BTC", score=0.7, span_start=5, span_end=12
    )
    fused = fuse(
        FusionInput(small_policy(), outcomes(State.OK), texts=[on_screen(0.7, matches=[match])])  # type: ignore[list-item]
    )
    assert fused.decision == pb.DECISION_REVIEW
    [top] = [e for e in fused.evidence if e.category == "spam"]
    assert (top.modality, top.source, top.signal) == (pb.MODALITY_VISUAL, pb.SOURCE_ON_SCREEN_TEXT, "ocr")
    assert (top.start_ms, top.end_ms, top.snippet) == (3000, 6000, OFFER)
    assert category(fused, "spam").by_modality["VISUAL"] > 0.69
    visual = next(m for m in fused.modalities if m.modality == pb.MODALITY_VISUAL)
    assert (visual.frames_read, visual.frames_with_text) == (8, 3)


def test_on_screen_text_counts_while_clip_runs_uncalibrated_but_the_frame_scores_do_not() -> None:
    inp = FusionInput(
        small_policy(),
        outcomes(State.UNCALIBRATED),
        texts=[on_screen(0.95)],  # type: ignore[list-item]
        frames=frames([0.99, 0.99, 0.99]),
        frame_model=CLIP,
    )
    fused = fuse(inp)
    assert fused.decision == pb.DECISION_BLOCK
    assert category(fused, "spam").score > 0.9
    assert category(fused, "violence").score == 0.0  # uncalibrated frames stay out
    # A failed vision call brings no text to count.
    failed = fuse(FusionInput(small_policy(), outcomes(State.FAILED), texts=[on_screen(0.95)]))  # type: ignore[list-item]
    assert category(failed, "spam").score == 0.0


def test_the_policy_weights_on_screen_text_apart_from_clip() -> None:
    policy = small_policy(ocr={"weight": 0.5}, fusion={"modality_weights": {"VISUAL": 1.0}})
    fused = fuse(FusionInput(policy, outcomes(State.OK), texts=[on_screen(0.8)]))  # type: ignore[list-item]
    assert abs(category(fused, "spam").score - 0.4) < 1e-6
    assert fused.decision == pb.DECISION_ALLOW
    muted = small_policy(fusion={"modality_weights": {"VISUAL": 0.0}})
    fused = fuse(FusionInput(muted, outcomes(State.OK), texts=[on_screen(0.8)]))  # type: ignore[list-item]
    assert fused.decision == pb.DECISION_REVIEW  # the VISUAL weight does not mute the text


def test_cues_become_items_per_stream_and_the_verdicts_on_screen_text() -> None:
    result = OcrResult(
        cues=[
            OcrCue(
                text="Double your\nbitcoin", start_ms=3000, end_ms=6000, confidence=0.93, frames=[3, 4, 5]
            ),
            OcrCue(text="  ", start_ms=7000, end_ms=8000, confidence=0.7, frames=[7]),
        ],
        frames_read=6,
        frames_unchanged=4,
        frames_with_text=4,
        boxes=5,
        model=OCR_MODEL,
    )
    seen = read_on_screen(result, frame_streams=[0] * 5 + [2] * 5)
    items, streams = cue_items(seen)
    assert [(i.id, i.text, i.source, i.start_ms, i.end_ms) for i in items] == [
        ("ocr-0", "Double your bitcoin", "on_screen_text", 3000, 6000)
    ]
    assert streams == {"ocr-0": 0}
    assert frame_counts(seen) == (10, 4)
    listed = on_screen_proto(seen)
    assert [(t.text, t.start_ms, t.end_ms, t.stream_index) for t in listed] == [
        ("Double your\nbitcoin", 3000, 6000, 0),
        ("  ", 7000, 8000, 2),
    ]
    assert abs(listed[0].confidence - 0.93) < 1e-6


def test_frames_go_to_vision_large_enough_to_read_when_the_policy_reads_text() -> None:
    from gateway.config import GatewayConfig

    config = GatewayConfig()
    assert config.split_options(ocr=True).frame_max_side == 960
    assert config.split_options(ocr=False).frame_max_side == 336


def test_the_languages_heard_reach_the_audio_status_and_survive_the_record() -> None:
    from gateway.orchestrator import record
    from gateway.orchestrator.stored import StoredOutcome

    audio = ModalityOutcome(Modality.AUDIO, State.OK, model=CLIP, languages="es,en")
    fused = fuse(FusionInput(small_policy(), {Modality.AUDIO: audio}))
    status = next(m for m in fused.modalities if m.modality == pb.MODALITY_AUDIO)
    assert status.languages == "es,en"
    stored = StoredOutcome.model_validate(record._outcome(audio))
    assert stored.languages == "es,en"
    old = {k: v for k, v in record._outcome(audio).items() if k != "languages"}  # written before it existed
    assert StoredOutcome.model_validate(old).languages == ""
