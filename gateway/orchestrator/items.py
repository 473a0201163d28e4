"""The text items a request sends to the text service: its own text, and its transcript.

Every item has a stable id (the text service answers by id) and a source, which becomes the
evidence's source; timed pieces (captions, subtitles, transcript segments) keep their times,
and the ones from a container stream (subtitle cues, each audio track's transcript) are mapped
to it by id (RunState.item_streams), so their evidence says which stream.
"""

from __future__ import annotations

from gateway.job import ModerationRequest
from gateway.media.types import SplitMedia
from gateway.orchestrator.state import TrackSegment
from modgate.v1 import moderation_pb2 as pb
from modgate.wire import SpeechSegment, TextItem


def text_items(request: ModerationRequest, media: SplitMedia | None) -> list[TextItem]:
    """Everything textual about the item except the transcript, one item per timed piece."""
    items: list[TextItem] = []
    if request.title.strip():
        items.append(TextItem(id="title", text=request.title, source="title"))
    if request.description.strip():
        items.append(TextItem(id="description", text=request.description, source="description"))
    tags = [t.strip() for t in request.hashtags if t.strip()]
    if tags:
        text = " ".join(t if t.startswith("#") else f"#{t}" for t in tags)
        items.append(TextItem(id="hashtags", text=text, source="hashtag"))
    for i, cue in enumerate(request.captions):
        if cue.text.strip():
            items.append(
                TextItem(
                    id=f"caption-{i}",
                    text=cue.text,
                    source="caption",
                    start_ms=cue.start_ms,
                    end_ms=cue.end_ms,
                )
            )
    if media is not None:
        items.extend(media_items(media))
    return items


def media_items(media: SplitMedia) -> list[TextItem]:
    """The text inside the container: subtitle cues and metadata tags."""
    items: list[TextItem] = []
    for i, sub in enumerate(media.subtitles):
        if sub.text.strip():
            items.append(
                TextItem(
                    id=f"subtitle-{i}",
                    text=sub.text,
                    source="subtitle",
                    start_ms=sub.start_ms,
                    end_ms=sub.end_ms,
                )
            )
    for key, value in sorted(media.metadata.items()):
        if value.strip():
            items.append(TextItem(id=f"metadata-{key}", text=value, source="metadata"))
    return items


def subtitle_streams(media: SplitMedia) -> dict[str, int]:
    """The subtitle stream behind each subtitle item (media_items' ids)."""
    return {f"subtitle-{i}": sub.stream_index for i, sub in enumerate(media.subtitles)}


def transcript_items(segments: list[SpeechSegment], stream_index: int) -> list[TextItem]:
    """The text items of one audio track's transcript (ids unique across tracks)."""
    return [
        TextItem(
            id=f"transcript-{stream_index}-{i}",
            text=seg.text.strip(),
            source="transcript",
            start_ms=max(0, round(seg.start_s * 1000)),
            end_ms=max(0, round(seg.end_s * 1000)),
        )
        for i, seg in enumerate(segments)
        if seg.text.strip()
    ]


def transcript_proto(segments: list[TrackSegment]) -> list[pb.TranscriptSegment]:
    """The transcript as the verdict reports it (ModerateOptions.include_transcript): track by
    track, each in time order."""
    return [
        pb.TranscriptSegment(
            text=s.segment.text.strip(),
            start_ms=max(0, round(s.segment.start_s * 1000)),
            end_ms=max(0, round(s.segment.end_s * 1000)),
            avg_logprob=s.segment.avg_logprob,
            no_speech_prob=s.segment.no_speech_prob,
            stream_index=max(0, s.stream_index),
            language=s.language,
        )
        for s in segments
    ]
