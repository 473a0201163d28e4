"""Synthetic stored verdicts for replay's test and benchmark (no model, no media).

Each record is what the gateway would have stored for a request whose services answered the
given scores: a RunState filled with random text item scores (TEXT sources, transcript
segments as AUDIO, now and then on-screen text), sometimes frames (VISUAL OK or UNCALIBRATED),
sometimes a FAILED or TIMED_OUT modality; fused by gateway.fusion.fuse, its fusion document
written by gateway/orchestrator/record.py's fused_record and the record built by
gateway/ledger/records.py's record_of, exactly as the ledger does after a request. A few
records are unfused (split_only gateways). Deterministic per seed. The shares below are
chosen to look like moderated traffic: mostly ALLOW, a tenth REVIEW or more, failures rare.

    records = list(synthetic_records(policy, 1000, seed=1))
    store.commit_many(records)          # 10,000 and more: in batches of 1,000 (memory)
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
from collections.abc import Iterator
from typing import Literal

from gateway.context import RequestContext
from gateway.fusion import ON_SCREEN, Fused, ModalityOutcome, ScoredText, State, fuse
from gateway.ledger.entry import LedgerEntry
from gateway.ledger.records import record_of, stamp
from gateway.media.limits import StreamsOverLimit
from gateway.orchestrator.record import fused_record
from gateway.orchestrator.state import RunState
from gateway.orchestrator.verdict import fused_verdict
from modgate.policy import Modality, Policy
from modgate.store.records import PolicyStamp, VerdictRecord
from modgate.v1 import moderation_pb2 as pb
from modgate.wire import FrameScore, ModelInfo, TextItem, TextItemResult, TextMatch

TEXT_MODEL = ModelInfo(name="all-MiniLM-L6-v2", version="synthetic", engine="sentence-transformers")
SPEECH_MODEL = ModelInfo(name="whisper-tiny.en", version="synthetic", engine="faster-whisper/int8")
CLIP_MODEL = ModelInfo(name="ViT-B-32", version="synthetic", engine="open_clip")
TEXT_SOURCES = ("title", "description", "hashtag", "caption", "subtitle")
CALLER = "synthetic"
FRAME_INTERVAL_MS = 1000
# Shares of records: unfused (split_only), with media (AUDIO and VISUAL ran), and per modality
# FAILED / TIMED_OUT.
UNFUSED_SHARE = 0.01
MEDIA_SHARE = 0.6
FAILED_SHARE = 0.04
TIMED_OUT_SHARE = 0.02
# Most content is about nothing a category names: scores up to NOISE_MAX; an item scores one
# category higher with ELEVATED_ITEM_SHARE, a record's frames show an event with EVENT_SHARE.
NOISE_MAX = 0.15
ELEVATED_ITEM_SHARE = 0.06
EVENT_SHARE = 0.1
Source = Literal["title", "description", "hashtag", "caption", "subtitle", "transcript", "on_screen_text"]


def _noise(rng: random.Random) -> float:
    """What a service returns for a category the content is not about: below every evidence floor."""
    return round(rng.random() ** 3 * NOISE_MAX, 4)


def _elevated(rng: random.Random) -> float:
    return round(rng.uniform(NOISE_MAX, 1.0), 4)


def _scored_text(rng: random.Random, policy: Policy, item_id: str, source: Source, at_ms: int) -> ScoredText:
    timed = source in ("transcript", "subtitle", "caption", ON_SCREEN)
    words = " ".join(rng.choice(("fine", "bad", "odd", "ok")) for _ in range(6))
    scores = {name: _noise(rng) for name in policy.text_categories()}
    if rng.random() < ELEVATED_ITEM_SHARE:
        scores[rng.choice(list(scores))] = _elevated(rng)
    top = max(scores, key=lambda name: scores[name])
    match = TextMatch(
        category=top,
        score=scores[top],
        signal="semantic",
        evidence="nearest exemplar",
        span_start=0,
        span_end=9,
    )
    return ScoredText(
        item=TextItem(
            id=item_id,
            text=f"synthetic {source} {item_id}: {words}",
            source=source,
            start_ms=at_ms if timed else None,
            end_ms=at_ms + 2500 if timed else None,
        ),
        result=TextItemResult(id=item_id, scores=scores, matches=[match]),
        model=TEXT_MODEL,
    )


def _frames(rng: random.Random, policy: Policy) -> list[FrameScore]:
    """Noise, and now and then an event: one category high over a few consecutive frames."""
    vision = policy.vision_categories()
    count = rng.randint(2, 10)
    scores = [{name: _noise(rng) for name in vision} for _ in range(count)]
    if rng.random() < EVENT_SHARE:
        category, start = rng.choice(list(vision)), rng.randrange(count)
        for frame in scores[start : start + rng.randint(1, 4)]:
            frame[category] = _elevated(rng)
    return [
        FrameScore(
            index=i,
            timestamp_ms=FRAME_INTERVAL_MS * i,
            scores=frame,
            best_prompts={name: rule.prompts[0] for name, rule in vision.items()},
        )
        for i, frame in enumerate(scores)
    ]


def _state(rng: random.Random) -> State:
    roll = rng.random()
    if roll < FAILED_SHARE:
        return State.FAILED
    return State.TIMED_OUT if roll < FAILED_SHARE + TIMED_OUT_SHARE else State.OK


def _outcome(modality: Modality, state: State, model: ModelInfo | None, items: int) -> ModalityOutcome:
    reason = {
        State.FAILED: "synthetic: service answered 503",
        State.TIMED_OUT: "synthetic: no answer before the deadline",
        State.SKIPPED: "no media",
        State.UNCALIBRATED: "synthetic: uncalibrated weights",
    }.get(state, "")
    ran = state in (State.OK, State.UNCALIBRATED)
    return ModalityOutcome(
        modality,
        state,
        reason=reason,
        latency_ms=42.0,
        model=model if ran else None,
        items=items if ran else 0,
    )


def _text_lane(rng: random.Random, policy: Policy, run: RunState) -> None:
    state = _state(rng)
    if state == State.OK:
        run.texts = [
            _scored_text(rng, policy, f"t{i}", rng.choice(TEXT_SOURCES), 1000 * i)
            for i in range(rng.randint(1, 4))
        ]
    run.outcomes[Modality.TEXT] = _outcome(Modality.TEXT, state, TEXT_MODEL, len(run.texts))


def _media_lanes(rng: random.Random, policy: Policy, run: RunState) -> None:
    audio = _state(rng)
    if audio == State.OK:
        run.transcript_texts = [
            _scored_text(rng, policy, f"transcript-1-{i}", "transcript", 3000 * i)
            for i in range(rng.randint(0, 4))
        ]
    run.outcomes[Modality.AUDIO] = _outcome(Modality.AUDIO, audio, SPEECH_MODEL, len(run.transcript_texts))
    visual = _state(rng)
    if visual == State.OK and rng.random() < 0.5:
        visual = State.UNCALIBRATED  # as every local stack without CLIP weights runs
    if visual in (State.OK, State.UNCALIBRATED):
        run.frames = _frames(rng, policy)
        run.frame_model = CLIP_MODEL.model_copy(update={"calibrated": visual == State.OK})
        run.frame_streams = [0] * len(run.frames)
        if rng.random() < 0.2:
            run.on_screen_texts = [_scored_text(rng, policy, "ocr-0", ON_SCREEN, 0)]
    run.outcomes[Modality.VISUAL] = _outcome(Modality.VISUAL, visual, CLIP_MODEL, len(run.frames))


def synthetic_state(rng: random.Random, policy: Policy) -> RunState:
    """What one request's modalities could have collected."""
    run = RunState(policy=policy, frame_interval_ms=FRAME_INTERVAL_MS)
    _text_lane(rng, policy, run)
    if rng.random() < MEDIA_SHARE:
        _media_lanes(rng, policy, run)
    else:
        for modality in (Modality.AUDIO, Modality.VISUAL):
            run.outcomes[modality] = _outcome(modality, State.SKIPPED, None, 0)
    return run


def _verdict(request_id: str, content_id: str, policy: Policy, fused: Fused) -> pb.Verdict:
    return fused_verdict(
        fused,
        request_id=request_id,
        content_id=content_id,
        policy_name=policy.name,
        policy_version=policy.version,
        trace_id=hashlib.sha256(request_id.encode()).hexdigest()[:32],
        timings=[pb.StageTiming(stage="fusion", duration_ms=1)],
    )


def synthetic_record(
    rng: random.Random, policy: Policy, policy_stamp: PolicyStamp, index: int, decided_at: float
) -> VerdictRecord:
    request_id = f"synthetic-{index}"
    content_id = f"content-{index % 997}"
    entry = LedgerEntry(
        caller=CALLER,
        request_id=request_id,
        idempotent=True,
        digest=hashlib.sha256(request_id.encode()).hexdigest(),
        content_id=content_id,
        received_at=decided_at - 0.5,
        deadline=0.0,
    )
    if rng.random() < UNFUSED_SHARE:
        ctx, fused = None, Fused(pb.DECISION_ALLOW, 0.0, [], [], [], ["split only"], False)
    else:
        run = synthetic_state(rng, policy)
        fused = fuse(run.fusion_input())
        ctx = RequestContext(request_id=request_id, deadline=0.0, policy=policy)
        ctx.fusion_record = fused_record(run, [], None, StreamsOverLimit.REVIEW)
    verdict = _verdict(request_id, content_id, policy, fused)
    record = record_of(entry, verdict, ctx, policy_stamp)
    # record_of stamps "now"; spread the records over time as a real store's are.
    verdict.decided_at_ms = int(decided_at * 1000)
    return dataclasses.replace(record, decided_at=decided_at, verdict=verdict.SerializeToString())


def synthetic_records(
    policy: Policy, count: int, *, seed: int = 0, start: float = 1_780_000_000.0, spacing_s: float = 1.0
) -> Iterator[VerdictRecord]:
    """`count` records decided `spacing_s` apart from `start` (Unix seconds), fused under `policy`."""
    rng = random.Random(seed)
    policy_stamp = stamp(policy)
    for index in range(count):
        yield synthetic_record(rng, policy, policy_stamp, index, start + index * spacing_s)
