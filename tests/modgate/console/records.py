"""Stored verdicts for the console tests: REVIEW items with AUDIO / VISUAL / TEXT evidence,
a transcript, on-screen text and evidence-frame thumbnails, plus verdicts that are not in the
queue (BLOCK, ALLOW). Distinctive words (CONTENT_WORDS) let the tests prove content never
reaches logs or URLs."""

from __future__ import annotations

import io
import time
from dataclasses import dataclass

from PIL import Image

from modgate.store import PolicyStamp, VerdictRecord, VerdictStore
from modgate.store.records import Thumbnail, new_verdict_id
from modgate.v1 import moderation_pb2 as pb

CATEGORIES = ("violence", "hate", "sexual")
POLICY = PolicyStamp(
    "default", "7", "a" * 64, {"name": "default", "version": "7", "categories": {c: {} for c in CATEGORIES}}
)
STRICT = PolicyStamp("strict", "2", "b" * 64, {"name": "strict", "version": "2", "categories": {"hate": {}}})
TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
DURATION_MS = 10_000
TRANSCRIPT = ("hello and welcome", "zorblat I will kill you tomorrow", "thanks for watching")
ON_SCREEN = "FIGHT NIGHT quuxly"
CONTENT_WORDS = ("zorblat", "quuxly", "kill you")  # appear only in the verdicts' content


def jpeg(color: tuple[int, int, int], size: tuple[int, int] = (96, 54)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, format="JPEG", quality=80)
    return out.getvalue()


def model(name: str, variant: str = "stable") -> pb.ModelRef:
    return pb.ModelRef(name=name, version="v1", variant=variant)


def rich_verdict(category: str = "violence", score: float = 0.8) -> pb.Verdict:
    """REVIEW for `category`: a transcript match at 2.0-4.0 s (span "kill you"), a frame at
    6.0-6.5 s (frame 3), on-screen text at 8.0-9.0 s, an untimed title match."""
    spoken = TRANSCRIPT[1]
    at = spoken.index("kill you")
    evidence = [
        pb.Evidence(
            category=category,
            score=score,
            modality=pb.MODALITY_AUDIO,
            source=pb.SOURCE_TRANSCRIPT,
            start_ms=2000,
            end_ms=4000,
            snippet="kill you",
            frame_index=-1,
            model=model("MiniLM"),
            span_start=at,
            span_end=at + len("kill you"),
            signal="lexicon",
            stream_index=1,
        ),
        pb.Evidence(
            category=category,
            score=score * 0.8,
            modality=pb.MODALITY_VISUAL,
            source=pb.SOURCE_FRAME,
            start_ms=6000,
            end_ms=6500,
            snippet="a photo of a fight",
            frame_index=3,
            model=model("ViT-B-32"),
            span_start=-1,
            span_end=-1,
            signal="zero-shot",
            stream_index=0,
        ),
        pb.Evidence(
            category=category,
            score=score * 0.6,
            modality=pb.MODALITY_VISUAL,
            source=pb.SOURCE_ON_SCREEN_TEXT,
            start_ms=8000,
            end_ms=9000,
            snippet=ON_SCREEN,
            frame_index=-1,
            model=model("MiniLM"),
            span_start=-1,
            span_end=-1,
            signal="ocr",
            stream_index=0,
        ),
        pb.Evidence(
            category=category,
            score=score * 0.4,
            modality=pb.MODALITY_TEXT,
            source=pb.SOURCE_TITLE,
            snippet="title words",
            frame_index=-1,
            model=model("MiniLM"),
            span_start=-1,
            span_end=-1,
            signal="semantic",
            stream_index=-1,
        ),
    ]
    return pb.Verdict(
        decision=pb.DECISION_REVIEW,
        risk=score,
        categories=[
            pb.CategoryScore(
                category=category,
                score=score,
                decision=pb.DECISION_REVIEW,
                by_modality={"AUDIO": score, "VISUAL": score * 0.8},
            ),
            pb.CategoryScore(category="sexual", score=0.05, decision=pb.DECISION_ALLOW),
        ],
        evidence=evidence,
        transcript=[
            pb.TranscriptSegment(text=text, start_ms=i * 2000, end_ms=(i + 1) * 2000, stream_index=1)
            for i, text in enumerate(TRANSCRIPT)
        ],
        on_screen_text=[pb.OnScreenText(text=ON_SCREEN, start_ms=8000, end_ms=9000, confidence=0.9)],
        media=pb.MediaInfo(duration_ms=DURATION_MS, has_audio=True, has_video=True, frames_sampled=10),
        policy_name="default",
        policy_version="7",
        trace_id=TRACE_ID,
    )


@dataclass(frozen=True)
class Stored:
    """The verdict ids the fixture stored, by role in the tests."""

    top_old: str  # REVIEW violence 0.8, oldest: first in the queue
    top_new: str  # REVIEW violence 0.8, newer: second
    hate_canary: str  # REVIEW hate 0.6, served by a canary
    strict: str  # REVIEW hate 0.5 under policy "strict"
    blocked: str  # BLOCK: never in the queue
    allowed: str  # ALLOW: never in the queue

    @property
    def queue_order(self) -> list[str]:
        return [self.top_old, self.top_new, self.hate_canary, self.strict]


def _record(
    verdict: pb.Verdict,
    *,
    decided_at: float,
    policy: PolicyStamp = POLICY,
    variant: str = "stable",
    thumbnails: tuple[Thumbnail, ...] = (),
) -> VerdictRecord:
    verdict_id = new_verdict_id()
    verdict.verdict_id = verdict_id
    verdict.decided_at_ms = int(decided_at * 1000)
    return VerdictRecord(
        verdict_id=verdict_id,
        caller="checkout-backend",
        request_id=f"req-{verdict_id[:8]}",
        request_digest="d" * 64,
        content_id=f"video-{verdict_id[:6]}",
        received_at=decided_at - 1.0,
        decided_at=decided_at,
        decision=pb.Decision.Name(verdict.decision).removeprefix("DECISION_"),
        risk=verdict.risk,
        degraded=False,
        policy=policy,
        trace_id=verdict.trace_id,
        models={
            "AUDIO": {"name": "whisper-tiny.en", "version": "v1", "variant": "stable"},
            "VISUAL": {"name": "ViT-B-32", "version": "v1", "variant": variant},
            "TEXT": {"name": "all-MiniLM-L6-v2", "version": "v1", "variant": "stable"},
        },
        fusion={"version": 1, "kind": "unfused", "reason": "console test"},
        verdict=verdict.SerializeToString(),
        thumbnails=thumbnails,
    )


def fill_store(store: VerdictStore, now: float | None = None) -> Stored:
    now = time.time() if now is None else now
    frame = Thumbnail(frame_index=3, time_ms=6000, width=96, height=54, jpeg=jpeg((200, 30, 30)))
    other = Thumbnail(frame_index=7, time_ms=7000, width=96, height=54, jpeg=jpeg((30, 30, 200)))
    top_old = _record(rich_verdict(), decided_at=now - 3 * 3600, thumbnails=(frame, other))
    top_new = _record(rich_verdict(), decided_at=now - 600, thumbnails=(frame,))
    hate = _record(rich_verdict("hate", 0.6), decided_at=now - 7200, variant="canary")
    strict_verdict = rich_verdict("hate", 0.5)
    strict_verdict.policy_name = "strict"
    strict = _record(strict_verdict, decided_at=now - 60, policy=STRICT)
    block_verdict = rich_verdict("violence", 0.95)
    block_verdict.decision = pb.DECISION_BLOCK
    blocked = _record(block_verdict, decided_at=now - 30)
    allow_verdict = pb.Verdict(decision=pb.DECISION_ALLOW, risk=0.01, policy_name="default")
    allowed = _record(allow_verdict, decided_at=now - 20)
    for r in (top_old, top_new, hate, strict, blocked, allowed):
        assert store.commit(r)
    return Stored(
        top_old.verdict_id,
        top_new.verdict_id,
        hate.verdict_id,
        strict.verdict_id,
        blocked.verdict_id,
        allowed.verdict_id,
    )
