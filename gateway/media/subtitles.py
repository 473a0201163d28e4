"""Embedded subtitle streams to plain-text cues, bounded by the cue limits.

Text codecs only (mov_text, subrip, webvtt, ass...): ASS dialogue lines lose their markup, a
bitmap subtitle stream (no text to moderate) is given up and reported as undecodable.
"""

from __future__ import annotations

import re
from typing import Any

import av.error

from gateway.errors import TooManySubtitleCues
from gateway.media.limits import MediaLimits
from gateway.media.streams import StreamState
from gateway.media.types import SubtitleCue

_ASS_OVERRIDE = re.compile(r"\{[^}]*\}")
# FFmpeg decoder names -> the codec names callers know.
_SUBTITLE_CODEC_NAMES = {"srt": "subrip", "ssa": "ass"}


class CueCollector:
    """The cues of every subtitle stream of one split, within max_subtitle_cues/chars."""

    def __init__(self, limits: MediaLimits, origin_s: float) -> None:
        self.limits = limits
        self.origin_s = origin_s
        self.cues: list[SubtitleCue] = []
        self.chars = 0

    def add(self, state: StreamState, packet: Any) -> None:
        """Decode one subtitle packet of `state`'s stream; raises TooManySubtitleCues past the
        limits."""
        new_cues = decode_cues(state, packet, self.origin_s)
        for cue in new_cues:
            self.chars += len(cue.text)
        self.cues.extend(new_cues)
        self._check()

    def _check(self) -> None:
        limits = self.limits
        count = len(self.cues)
        if count > limits.max_subtitle_cues or self.chars > limits.max_subtitle_chars:
            raise TooManySubtitleCues(
                f"the subtitle streams hold over {limits.max_subtitle_cues} cues or "
                f"{limits.max_subtitle_chars} characters; strip the subtitles or send them trimmed",
                limit="subtitle_cues",
                value=count,
                maximum=limits.max_subtitle_cues,
            )

    def sorted(self) -> list[SubtitleCue]:
        """Every cue in display order (streams interleave)."""
        return sorted(self.cues, key=lambda c: (c.start_ms, c.stream_index))


def decode_cues(state: StreamState, packet: Any, origin_s: float) -> list[SubtitleCue]:
    """The cue one subtitle packet holds ([] for none, an empty one or a decoding failure,
    which is counted on `state`)."""
    if not packet.size or packet.pts is None:
        return []
    try:
        subtitle_set = state.stream.codec_context.decode2(packet)
    except av.error.FFmpegError as exc:
        state.failed(exc)
        return []
    if subtitle_set is None:
        return []
    start_s = float(packet.pts * packet.time_base) - origin_s
    if packet.duration:
        end_s = start_s + float(packet.duration * packet.time_base)
    elif subtitle_set.end_display_time > subtitle_set.start_display_time:
        end_s = start_s + subtitle_set.end_display_time / 1000.0
    else:
        end_s = start_s
    start_s += subtitle_set.start_display_time / 1000.0
    texts = []
    for rect in subtitle_set:
        if rect.type == b"bitmap":
            state.given_up = True
            state.errors += 1
            state.first_error = "bitmap subtitles carry no text"
            return []
        texts.append(rect_text(rect))
    text = "\n".join(t for t in texts if t)
    state.outputs += 1
    if not text:
        return []
    return [
        SubtitleCue(
            text=text,
            start_ms=max(round(start_s * 1000), 0),
            end_ms=max(round(end_s * 1000), 0),
            stream_index=state.stream.index,
            codec=_SUBTITLE_CODEC_NAMES.get(name := state.stream.codec_context.name, name),
            language=state.stream.language or "",
        )
    ]


def rect_text(rect: Any) -> str:
    """Plain text of one text subtitle rect (ASS dialogue lines lose their markup)."""
    if rect.type == b"ass":
        # "ReadOrder,Layer,Style,Name,MarginL,MarginR,MarginV,Effect,Text": text may hold commas.
        line = rect.ass.decode("utf-8", errors="replace")
        parts = line.split(",", 8)
        text = parts[8] if len(parts) == 9 else line
        text = _ASS_OVERRIDE.sub("", text)
        text = text.replace("\\N", "\n").replace("\\n", "\n").replace("\\h", " ")
    else:
        text = rect.text.decode("utf-8", errors="replace")
    return "\n".join(line.strip() for line in text.strip().splitlines() if line.strip())
