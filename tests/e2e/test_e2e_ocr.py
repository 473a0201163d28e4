"""On-screen text through the real stack (speech, vision with PP-OCR, text, gateway): a video
whose only harmful content is text burned into its frames from 3 s to 6 s is caught as VISUAL
`ocr` evidence at that time; the same video with a benign overlay is allowed; a subtitle track
and on-screen text that disagree are both judged."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from modgate.client import Options
from modgate.tools.mediagen import Cue, Generated, MediaSpec, TextOverlay
from modgate.tools.samples import THREAT
from modgate.v1 import moderation_pb2 as pb
from tests.e2e.conftest import Gateway

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

SCAM = "Double your bitcoin in 24 hours"
BENIGN = "Thanks for watching, see you next week"


def clip(text: str, subtitles: tuple[Cue, ...] = ()) -> MediaSpec:
    """720p, silent, the text on screen from 3 s to 6 s (40 px, outlined, lower third)."""
    return MediaSpec(
        width=1280,
        height=720,
        fps=5,
        duration_s=9.0,
        audio="silence",
        overlays=(TextOverlay(3.0, 6.0, text, size_px=40),),
        subtitles=subtitles,
    )


def visual(verdict: pb.Verdict) -> pb.ModalityStatus:
    return next(m for m in verdict.modalities if m.modality == pb.MODALITY_VISUAL)


def moderate(gateway: Gateway, media: Generated) -> pb.Verdict:
    with gateway.client(timeout_s=300) as client:
        return client.moderate_file(media.path, options=Options(include_transcript=True))


def ocr_evidence(verdict: pb.Verdict, category: str) -> list[pb.Evidence]:
    return [
        e
        for e in verdict.evidence
        if e.category == category and e.modality == pb.MODALITY_VISUAL and e.signal == "ocr"
    ]


def test_a_scam_offer_shown_on_screen_is_caught_as_visual_ocr_evidence_at_its_time(
    gateway: Gateway, make_media: Callable[[MediaSpec], Generated]
) -> None:
    verdict = moderate(gateway, make_media(clip(SCAM)))

    assert verdict.decision in (pb.DECISION_REVIEW, pb.DECISION_BLOCK), list(verdict.reasons)
    spam = next(c for c in verdict.categories if c.category == "spam_scam")
    assert spam.decision in (pb.DECISION_REVIEW, pb.DECISION_BLOCK)
    [top, *_] = ocr_evidence(verdict, "spam_scam")
    assert top.source == pb.SOURCE_ON_SCREEN_TEXT
    assert "double your bitcoin" in top.snippet.lower()
    assert abs(top.start_ms - 3000) <= 1000 and abs(top.end_ms - 6000) <= 1000, (top.start_ms, top.end_ms)
    status = visual(verdict)
    assert status.frames_read == verdict.media.frames_sampled > 0
    assert status.frames_with_text >= 2
    [shown] = [t for t in verdict.on_screen_text if "bitcoin" in t.text.lower()]
    assert abs(shown.start_ms - 3000) <= 1000 and shown.confidence > 0.6
    # Nothing else in the request is harmful: no other modality found anything.
    assert {e.modality for e in verdict.evidence} == {pb.MODALITY_VISUAL}


def test_the_same_video_with_a_benign_overlay_is_allowed(
    gateway: Gateway, make_media: Callable[[MediaSpec], Generated]
) -> None:
    verdict = moderate(gateway, make_media(clip(BENIGN)))

    assert verdict.decision == pb.DECISION_ALLOW, list(verdict.reasons)
    assert any("thanks for watching" in t.text.lower() for t in verdict.on_screen_text)
    assert visual(verdict).frames_with_text >= 2


def test_subtitles_and_on_screen_text_that_disagree_are_both_judged(
    gateway: Gateway, make_media: Callable[[MediaSpec], Generated]
) -> None:
    subtitles = (Cue(500, 2500, THREAT.text), Cue(3000, 6000, "Welcome back to my cooking channel!"))
    verdict = moderate(gateway, make_media(clip(SCAM, subtitles)))

    assert verdict.decision in (pb.DECISION_REVIEW, pb.DECISION_BLOCK), list(verdict.reasons)
    flagged = {c.category for c in verdict.categories if c.decision != pb.DECISION_ALLOW}
    assert {"spam_scam", "violence"} <= flagged, list(verdict.reasons)
    assert ocr_evidence(verdict, "spam_scam")
    subtitle = [e for e in verdict.evidence if e.source == pb.SOURCE_SUBTITLE and e.category == "violence"]
    assert subtitle and subtitle[0].modality == pb.MODALITY_TEXT
