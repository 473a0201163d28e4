"""The verdict's list of a container's streams: what each one is and whether it was moderated.

Nothing is skipped silently: every stream appears, and one whose content no modality saw says
why (skipped on request, over the audio-track or video-stream limit, no decoder, nothing
decodable in it, cover art, an attachment or data stream).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import av

from gateway.media.limits import SplitOptions
from gateway.media.streams import Selection, StreamState
from gateway.media.types import SKIPPED, AudioTrack, StreamKind, StreamReport
from gateway.media.video import VideoLane

_KINDS = {
    "audio": StreamKind.AUDIO,
    "video": StreamKind.VIDEO,
    "subtitle": StreamKind.SUBTITLE,
    "attachment": StreamKind.ATTACHMENT,
}
_NOT_MEDIA = {
    StreamKind.ATTACHMENT: "an attached file (fonts and the like), not media",
    StreamKind.DATA: "a data stream (timecodes, chapters...), not media",
}


@dataclass(frozen=True)
class Decoded:
    """What the split got out of one stream it read."""

    ok: bool  # it produced content (samples, frames, cues)
    why_not: str = ""  # when not ok: what went wrong
    frames_sampled: int = 0


def stream_kind(stream: Any) -> StreamKind:
    return _KINDS.get(stream.type, StreamKind.DATA)


def language(stream: Any) -> str:
    tag = stream.metadata.get("language", "") if stream.metadata else ""
    return "" if tag in ("und", "") else tag


def is_default(stream: Any) -> bool:
    return bool(stream.disposition & av.stream.Disposition.default)


def codec_name(stream: Any) -> str:
    context = stream.codec_context
    return getattr(getattr(context, "codec", None), "name", None) or getattr(context, "name", "") or ""


def decoded_streams(
    states: dict[int, StreamState],
    tracks: list[AudioTrack],
    lanes: dict[int, VideoLane],
    subtitles: list[Any],
) -> dict[int, Decoded]:
    """What came of each stream decoded (audio with a state asked to decode, video lanes, the
    subtitle streams read), by stream index."""

    def failed(index: int, nothing: str) -> Decoded:
        state = states[index]
        return Decoded(False, f"undecodable: {state.first_error}" if state.errors else nothing)

    heard = {track.stream_index for track in tracks}
    decoded: dict[int, Decoded] = {}
    for index, state in states.items():
        if not state.decode:
            continue
        if state.kind == "audio":
            decoded[index] = Decoded(True) if index in heard else failed(index, "no audio data")
        elif state.kind == "video":
            frames = len(lanes[index].picker.kept)
            ok = state.outputs > 0
            decoded[index] = Decoded(True, frames_sampled=frames) if ok else failed(index, "no video data")
    read = {s.index for s in subtitles}
    for index, state in states.items():
        if state.kind == "subtitle" and state.decode:
            decoded[index] = Decoded(True) if index in read else failed(index, "no subtitle data")
    return decoded


def stream_reports(
    container: Any, selection: Selection, options: SplitOptions, decoded: dict[int, Decoded]
) -> tuple[StreamReport, ...]:
    """One report per stream of `container`, in container order; `decoded` holds, by index,
    what came of each stream the split decoded."""
    over = {s.index for s in selection.over_limit}
    asked = {StreamKind.AUDIO: options.audio, StreamKind.VIDEO: options.video}
    asked[StreamKind.SUBTITLE] = options.subtitles
    reports = []
    for stream in container.streams:
        kind = stream_kind(stream)
        result = decoded.get(stream.index)
        if not asked.get(kind, True):
            reason = SKIPPED
        elif kind in _NOT_MEDIA:
            reason = _NOT_MEDIA[kind]
        elif stream.index in selection.notes:
            reason = selection.notes[stream.index]
        elif result is None:
            reason = "not read"
        else:
            reason = "" if result.ok else result.why_not
        width = height = 0
        if kind is StreamKind.VIDEO and stream.codec_context is not None:
            width, height = stream.codec_context.width, stream.codec_context.height
        reports.append(
            StreamReport(
                index=stream.index,
                kind=kind,
                codec=codec_name(stream),
                language=language(stream),
                default=is_default(stream),
                moderated=not reason,
                reason=reason,
                over_limit=stream.index in over and reason != SKIPPED,
                width=width,
                height=height,
                frames_sampled=result.frames_sampled if result is not None else 0,
            )
        )
    return tuple(reports)
