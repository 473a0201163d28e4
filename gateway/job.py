"""What the servicer hands the data plane: one validated request as typed domain values.

The servicer turns a modgate.v1 ModerateRequest (already validated) into a ModerationRequest,
opens its media as a MediaSource (gateway/media/intake.py) and passes both, with the
request's RequestContext, as one ModerationJob to the pipeline. Nothing downstream reads the
proto request.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.context import RequestContext
from gateway.media.intake import MediaSource
from modgate.policy import Modality
from modgate.v1 import moderation_pb2 as pb

MODALITY_OF_PB = {
    pb.MODALITY_AUDIO: Modality.AUDIO,
    pb.MODALITY_VISUAL: Modality.VISUAL,
    pb.MODALITY_TEXT: Modality.TEXT,
}


@dataclass(frozen=True)
class CaptionCue:
    text: str
    start_ms: int = 0
    end_ms: int = 0


@dataclass(frozen=True)
class ModerationRequest:
    """The item to moderate and how (ModerateRequest without its media and routing fields)."""

    content_id: str = ""
    title: str = ""
    description: str = ""
    hashtags: tuple[str, ...] = ()
    captions: tuple[CaptionCue, ...] = ()
    locale: str = ""  # BCP-47, e.g. "pt-BR"; empty: unknown
    skip: frozenset[Modality] = frozenset()
    include_transcript: bool = False
    frame_sample_fps: float = 0.0  # 0: the gateway's default
    max_frames: int = 0  # 0: the gateway's default
    variant: str = ""  # "stable" | "canary": pinned by an evaluation caller; "": routed by request id

    @classmethod
    def from_proto(cls, request: pb.ModerateRequest) -> ModerationRequest:
        options = request.options
        return cls(
            content_id=request.content_id,
            title=request.title,
            description=request.description,
            hashtags=tuple(request.hashtags),
            captions=tuple(CaptionCue(c.text, c.start_ms, c.end_ms) for c in request.captions),
            locale=request.locale,
            skip=frozenset(MODALITY_OF_PB[m] for m in options.skip_modalities if m in MODALITY_OF_PB),
            include_transcript=options.include_transcript,
            frame_sample_fps=options.frame_sample_fps,
            max_frames=options.max_frames,
            variant=options.variant,
        )


@dataclass(frozen=True)
class ModerationJob:
    request: ModerationRequest
    media: MediaSource | None  # None: a text-only request
    ctx: RequestContext
