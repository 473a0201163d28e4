"""Consecutive frames showing the same text become one cue with a start and an end.

A frame's text is its recognized lines in reading order, one per line. Two frames show "the
same text" when their normalised texts (case and spacing folded) are at least
SAME_TEXT_RATIO alike: the recognizer may misread a character in one frame of many, and a
cue must not split on it. A cue starts at its first frame and ends where the next frame
looked at begins (the text was seen up to then), or one frame gap after its last frame at the
end of the request. Time going backwards (the next video stream's frames) ends every cue.
"""

from __future__ import annotations

import difflib
import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from modgate.wire import OcrCue

SAME_TEXT_RATIO = 0.8
DEFAULT_GAP_MS = 1000  # the last cue of a request with one frame lasts this long


@dataclass(frozen=True)
class FrameText:
    """What one frame shows: index in the request, time, text (lines joined by newlines;
    empty: no text), and the mean confidence of its lines."""

    index: int
    timestamp_ms: int
    text: str
    confidence: float


def fold(text: str) -> str:
    return " ".join(text.lower().split())


def same_text(a: str, b: str) -> bool:
    a, b = fold(a), fold(b)
    if a == b:
        return True
    return difflib.SequenceMatcher(None, a, b, autojunk=False).ratio() >= SAME_TEXT_RATIO


@dataclass
class _Open:
    frames: list[FrameText]

    @property
    def best(self) -> FrameText:
        # The clearest reading stands for the cue.
        return max(self.frames, key=lambda f: (f.confidence, -f.index))


def _typical_gap(frames: Sequence[FrameText]) -> int:
    gaps = sorted(b.timestamp_ms - a.timestamp_ms for a, b in itertools.pairwise(frames))
    gaps = [g for g in gaps if g > 0]
    return gaps[len(gaps) // 2] if gaps else DEFAULT_GAP_MS


def merge_cues(frames: Sequence[FrameText]) -> list[OcrCue]:
    """Cues from the frames looked at, in request order (frames without text end a cue)."""
    gap = _typical_gap(frames)
    cues: list[OcrCue] = []
    current: _Open | None = None
    for position, frame in enumerate(frames):
        previous = frames[position - 1] if position else None
        backwards = previous is not None and frame.timestamp_ms < previous.timestamp_ms
        if current is not None and (
            backwards or not frame.text or not same_text(current.best.text, frame.text)
        ):
            end = previous.timestamp_ms + gap if backwards and previous is not None else frame.timestamp_ms
            cues.append(_close(current, end))
            current = None
        if not frame.text:
            continue
        if current is None:
            current = _Open([frame])
        else:
            current.frames.append(frame)
    if current is not None:
        cues.append(_close(current, current.frames[-1].timestamp_ms + gap))
    return cues


def _close(cue: _Open, end_ms: int) -> OcrCue:
    best = cue.best
    start = cue.frames[0].timestamp_ms
    return OcrCue(
        text=best.text,
        start_ms=start,
        end_ms=max(start, end_ms),
        confidence=round(best.confidence, 4),
        frames=[f.index for f in cue.frames],
    )
