"""What a request costs the model services, in work units: text characters, frames, audio seconds.

Admission (gateway/admission.py) holds a budget of units in flight and a per-request maximum;
this module only counts. One unit is the work of scoring 1,000 characters of text
(MODGATE_GATEWAY_COST_CHARS_PER_UNIT); a sampled frame and a second of audio are priced
relative to it from the CPU time each model service spends on them (bench/README.md, "Cost
admission", has the measurement). The transcript that speech produces is priced into the audio
second (it is at most a few characters per second of speech).

A request is charged twice: what the request itself says at admission (its title, description,
hashtags and captions, and for media the frame cap the splitter cannot exceed), then what only
the split knows (subtitle and metadata text, the frames actually sampled, the audio seconds).
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.media.types import SplitMedia
from modgate.v1 import moderation_pb2 as pb


@dataclass(frozen=True)
class CostRates:
    """The price list (MODGATE_GATEWAY_COST_*)."""

    chars_per_unit: int = 1000
    units_per_frame: float = 1.0
    units_per_audio_s: float = 0.5

    def units(self, cost: WorkCost) -> float:
        media = cost.frames * self.units_per_frame + cost.audio_s * self.units_per_audio_s
        return self.text_units(cost) + media

    def text_units(self, cost: WorkCost) -> float:
        return cost.text_chars / self.chars_per_unit


@dataclass(frozen=True)
class WorkCost:
    """Work a request asks of the model services."""

    text_chars: int = 0
    frames: int = 0
    audio_s: float = 0.0

    def __add__(self, other: WorkCost) -> WorkCost:
        return WorkCost(
            self.text_chars + other.text_chars, self.frames + other.frames, self.audio_s + other.audio_s
        )

    def describe(self) -> str:
        parts = [f"{self.text_chars:,} text characters"]
        if self.frames:
            parts.append(f"{self.frames} frames")
        if self.audio_s:
            parts.append(f"{self.audio_s:.0f} s of audio")
        return ", ".join(parts)


def request_text_chars(request: pb.ModerateRequest) -> int:
    """Characters of the text the request carries itself (what the text service will score)."""
    return (
        len(request.title)
        + len(request.description)
        + sum(len(tag) for tag in request.hashtags)
        + sum(len(cue.text) for cue in request.captions)
    )


def request_cost(request: pb.ModerateRequest, *, has_media: bool, frame_cap: int) -> WorkCost:
    """What is known at admission: the request's own text, and for media the most frames the
    split may sample (settled against the frames actually sampled by media_cost)."""
    return WorkCost(text_chars=request_text_chars(request), frames=frame_cap if has_media else 0)


def media_cost(media: SplitMedia, *, precharged_frames: int) -> WorkCost:
    """What the split added: subtitle and metadata text, audio seconds, and the frames sampled
    beyond (or, negative, short of) what admission charged."""
    chars = sum(len(sub.text) for sub in media.subtitles) + sum(len(v) for v in media.metadata.values())
    frames = len(media.frames) - precharged_frames
    # Every decoded track is transcribed (MAX_AUDIO_TRACKS), so every track's seconds cost.
    audio_s = sum(track.duration_s for track in media.audio_tracks)
    return WorkCost(text_chars=chars, frames=frames, audio_s=audio_s)
