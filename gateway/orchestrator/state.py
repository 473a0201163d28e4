"""What one request collects while its modalities run: the fusion input and what the verdict reports."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from gateway.fusion import FusionInput, ModalityOutcome, ScoredText
from gateway.orchestrator.ocr import OnScreen
from modgate.policy import Modality, Policy
from modgate.wire import FrameScore, HashResult, ModelInfo, SpeechSegment

FRAME_INTERVAL_FALLBACK_MS = 1000


@dataclass
class PendingShadow:
    """A copy sent to a shadow canary, to compare after the verdict is sent."""

    service: str
    task: asyncio.Task[Any]
    stream_index: int | None = None  # speech: the audio track it transcribes


@dataclass(frozen=True)
class TrackSegment:
    """A transcript segment and the audio track (container stream index) it was heard on."""

    stream_index: int
    segment: SpeechSegment
    language: str = ""


@dataclass
class RunState:
    policy: Policy
    outcomes: dict[Modality, ModalityOutcome] = field(default_factory=dict)
    texts: list[ScoredText] = field(default_factory=list)  # TEXT sources
    transcript_texts: list[ScoredText] = field(default_factory=list)  # AUDIO
    on_screen: OnScreen = field(default_factory=OnScreen)  # read by vision's OCR
    on_screen_texts: list[ScoredText] = field(default_factory=list)  # VISUAL, signal ocr
    frames: list[FrameScore] = field(default_factory=list)
    frame_model: ModelInfo | None = None
    # The frames' PDQ hashes and bank matches (VisionResult.hashes; None: no bank in the policy).
    hashes: HashResult | None = None
    frame_interval_ms: int = FRAME_INTERVAL_FALLBACK_MS
    segments: list[TrackSegment] = field(default_factory=list)
    shadows: list[PendingShadow] = field(default_factory=list)
    text_variant: str = "stable"  # the text variant that served (scores a shadow transcript too)
    # The container stream behind each text item (subtitle cues, transcript segments), by item
    # id, and behind each frame sent to vision, by position: evidence says which stream.
    item_streams: dict[str, int] = field(default_factory=dict)
    frame_streams: list[int] = field(default_factory=list)

    def fusion_input(self) -> FusionInput:
        return FusionInput(
            policy=self.policy,
            outcomes=dict(self.outcomes),
            texts=[*self.texts, *self.transcript_texts, *self.on_screen_texts],
            frames=list(self.frames),
            frame_model=self.frame_model,
            frame_interval_ms=self.frame_interval_ms,
            item_streams=dict(self.item_streams),
            frame_streams=list(self.frame_streams),
        )
