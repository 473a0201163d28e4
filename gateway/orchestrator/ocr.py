"""On-screen text in the gateway: the vision service reads it (services/vision/ocr) and returns
cues; here they become text items with source ``on_screen_text`` for the text service, their
streams for the evidence, and the verdict's ``on_screen_text`` list (include_transcript).

Fusion (gateway/fusion.py) counts their scores under VISUAL with signal ``ocr``, weighted by
the policy's ``ocr.weight`` rather than the VISUAL modality weight (that one weighs the CLIP
frame scores), and counts them even when CLIP runs uncalibrated: reading text does not depend
on the CLIP weights.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from modgate.v1 import moderation_pb2 as pb
from modgate.wire import OcrCue, OcrResult, TextItem

ON_SCREEN = "on_screen_text"  # the TextItem source (wire.TextSource)
STAGE = "ocr_text"  # the stage timing of scoring the cues


@dataclass
class OnScreen:
    """What a request read on screen: the cues (in request order) and the stream of each."""

    result: OcrResult | None = None
    streams: list[int] = field(default_factory=list)  # per cue: container stream index, -1 unknown


def read_on_screen(result: OcrResult, frame_streams: Sequence[int]) -> OnScreen:
    """The cues and, for each, the video stream of its first frame."""
    streams = [_stream(cue, frame_streams) for cue in result.cues]
    return OnScreen(result=result, streams=streams)


def _stream(cue: OcrCue, frame_streams: Sequence[int]) -> int:
    first = cue.frames[0] if cue.frames else -1
    return frame_streams[first] if 0 <= first < len(frame_streams) else -1


def cue_items(seen: OnScreen) -> tuple[list[TextItem], dict[str, int]]:
    """One text item per cue (lines joined by spaces: the text service scores sentences), and
    the stream behind each item id."""
    if seen.result is None:
        return [], {}
    items: list[TextItem] = []
    streams: dict[str, int] = {}
    for i, (cue, stream) in enumerate(zip(seen.result.cues, seen.streams, strict=True)):
        text = " ".join(cue.text.split())
        if not text:
            continue
        item_id = f"ocr-{i}"
        items.append(
            TextItem(id=item_id, text=text, source=ON_SCREEN, start_ms=cue.start_ms, end_ms=cue.end_ms)
        )
        streams[item_id] = stream
    return items, streams


def frame_counts(seen: OnScreen) -> tuple[int, int]:
    """(frames whose text was read or reused, frames showing text) for the modality status."""
    if seen.result is None:
        return 0, 0
    return seen.result.frames_read + seen.result.frames_unchanged, seen.result.frames_with_text


def on_screen_proto(seen: OnScreen) -> list[pb.OnScreenText]:
    """The verdict's on_screen_text list, in request order."""
    if seen.result is None:
        return []
    return [
        pb.OnScreenText(
            text=cue.text,
            start_ms=max(0, cue.start_ms),
            end_ms=max(0, cue.end_ms),
            confidence=cue.confidence,
            stream_index=max(0, stream),
        )
        for cue, stream in zip(seen.result.cues, seen.streams, strict=True)
    ]
