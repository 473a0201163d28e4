"""The item page's view model: what a reviewer sees of one stored verdict.

Pure: built from the VerdictRecord, its thumbnails and its lease, no I/O. Timeline positions
are in units of TIMELINE_UNITS across the media's duration (the template draws them as SVG
attributes, which the Content-Security-Policy allows where style attributes are not).
Transcript and on-screen text are split into parts, the matched spans marked, so the template
escapes every part and never marks up content itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from modgate.console.queue import Lease
from modgate.store.records import Thumbnail, VerdictRecord
from modgate.v1 import moderation_pb2 as pb

TIMELINE_UNITS = 1000.0
MIN_MARK_UNITS = 4.0  # an instant (one frame) stays visible
LANES = ("AUDIO", "VISUAL", "TEXT")


@dataclass(frozen=True)
class Mark:
    modality: str
    category: str
    score: float
    start_ms: int
    end_ms: int
    x: float  # 0..TIMELINE_UNITS
    width: float
    lane: int
    label: str

    @property
    def percent(self) -> float:
        return round(self.x / TIMELINE_UNITS * 100, 2)


@dataclass(frozen=True)
class Part:
    text: str
    marked: bool = False


@dataclass(frozen=True)
class TextLine:
    start_ms: int
    end_ms: int
    parts: tuple[Part, ...]
    matched: bool
    stream_index: int = 0


@dataclass(frozen=True)
class ThumbView:
    frame_index: int
    time_ms: int
    width: int
    height: int
    categories: tuple[str, ...]
    revealed: bool


@dataclass(frozen=True)
class CategoryView:
    name: str
    score: float
    decision: str
    by_modality: dict[str, float]


@dataclass(frozen=True)
class EvidenceView:
    category: str
    score: float
    modality: str
    source: str
    start_ms: int
    end_ms: int
    signal: str
    frame_index: int
    snippet: str
    model: str


@dataclass(frozen=True)
class ItemView:
    verdict_id: str
    decision: str
    risk: float
    decided_at: float
    degraded: bool
    policy_name: str
    policy_version: str
    trace_id: str
    duration_ms: int
    categories: tuple[CategoryView, ...]
    evidence: tuple[EvidenceView, ...]
    marks: tuple[Mark, ...]
    transcript: tuple[TextLine, ...]
    on_screen: tuple[TextLine, ...]
    thumbnails: tuple[ThumbView, ...]
    models: dict[str, dict[str, str]]
    reasons: tuple[str, ...]
    block_categories: tuple[str, ...]
    lease: Lease | None = None
    lanes: tuple[str, ...] = field(default=LANES)

    def to_json(self) -> dict[str, Any]:
        """The JSON API's item (thumbnail bytes are served by their own route)."""
        values = {k: v for k, v in self.__dict__.items() if k not in ("lease", "lanes")}
        values["lease"] = None if self.lease is None else dict(self.lease.__dict__)
        values["transcript"] = [_line_json(t) for t in self.transcript]
        values["on_screen"] = [_line_json(t) for t in self.on_screen]
        values["categories"] = [dict(c.__dict__) for c in self.categories]
        values["evidence"] = [dict(e.__dict__) for e in self.evidence]
        values["marks"] = [dict(m.__dict__) for m in self.marks]
        values["thumbnails"] = [dict(t.__dict__) for t in self.thumbnails]
        return values


def _line_json(line: TextLine) -> dict[str, Any]:
    return {
        "start_ms": line.start_ms,
        "end_ms": line.end_ms,
        "text": "".join(p.text for p in line.parts),
        "marked": [p.text for p in line.parts if p.marked],
    }


def item_view(
    record: VerdictRecord,
    thumbnails: list[Thumbnail],
    *,
    lease: Lease | None = None,
    revealed: frozenset[int] = frozenset(),
) -> ItemView:
    verdict = pb.Verdict.FromString(record.verdict)
    duration = media_duration_ms(verdict)
    evidence = list(verdict.evidence)
    frame_categories: dict[int, list[str]] = {}
    for e in evidence:
        if e.modality == pb.MODALITY_VISUAL and e.frame_index >= 0:
            frame_categories.setdefault(e.frame_index, []).append(e.category)
    return ItemView(
        verdict_id=record.verdict_id,
        decision=record.decision,
        risk=record.risk,
        decided_at=record.decided_at,
        degraded=record.degraded,
        policy_name=record.policy.name,
        policy_version=record.policy.version,
        trace_id=record.trace_id,
        duration_ms=duration,
        categories=tuple(
            CategoryView(
                c.category,
                c.score,
                pb.Decision.Name(c.decision).removeprefix("DECISION_"),
                dict(c.by_modality),
            )
            for c in sorted(verdict.categories, key=lambda c: -c.score)
        ),
        evidence=tuple(_evidence_view(e) for e in evidence),
        marks=tuple(timeline_marks(evidence, duration)),
        transcript=tuple(_lines(verdict.transcript, evidence, pb.SOURCE_TRANSCRIPT)),
        on_screen=tuple(_lines(verdict.on_screen_text, evidence, pb.SOURCE_ON_SCREEN_TEXT)),
        thumbnails=tuple(
            ThumbView(
                t.frame_index,
                t.time_ms,
                t.width,
                t.height,
                tuple(dict.fromkeys(frame_categories.get(t.frame_index, []))),
                t.frame_index in revealed,
            )
            for t in thumbnails
        ),
        models={str(k): dict(v) for k, v in sorted((record.models or {}).items())},
        reasons=tuple(verdict.reasons),
        block_categories=block_categories(record, verdict),
        lease=lease,
    )


def media_duration_ms(verdict: pb.Verdict) -> int:
    """The media's duration; without one (text only), the latest time anything points at."""
    if verdict.media.duration_ms:
        return int(verdict.media.duration_ms)
    ends = [e.end_ms for e in verdict.evidence]
    ends += [s.end_ms for s in verdict.transcript] + [c.end_ms for c in verdict.on_screen_text]
    return max([1, *ends])


def timeline_marks(evidence: list[pb.Evidence], duration_ms: int) -> list[Mark]:
    """Timed evidence as marks on its modality's lane (untimed evidence, e.g. a title, has none)."""
    marks = []
    for e in evidence:
        if e.start_ms == 0 and e.end_ms == 0:
            continue
        modality = pb.Modality.Name(e.modality).removeprefix("MODALITY_")
        if modality not in LANES:
            continue
        start = min(e.start_ms, duration_ms)
        end = min(max(e.end_ms, start), duration_ms)
        x = start / duration_ms * TIMELINE_UNITS
        width = max(MIN_MARK_UNITS, (end - start) / duration_ms * TIMELINE_UNITS)
        x = min(x, TIMELINE_UNITS - width)
        marks.append(
            Mark(
                modality=modality,
                category=e.category,
                score=round(e.score, 3),
                start_ms=e.start_ms,
                end_ms=e.end_ms,
                x=round(x, 2),
                width=round(width, 2),
                lane=LANES.index(modality),
                label=f"{modality} {e.category} {e.score:.2f} at {_s(e.start_ms)}-{_s(e.end_ms)}",
            )
        )
    return marks


def _s(ms: int) -> str:
    return f"{ms / 1000:.1f}s"


def highlight(text: str, spans: list[tuple[int, int]]) -> tuple[Part, ...]:
    """`text` cut into parts, the (merged, clipped) spans marked."""
    clipped = sorted((max(0, s), min(len(text), e)) for s, e in spans if min(len(text), e) > max(0, s))
    merged: list[list[int]] = []
    for start, end in clipped:
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    parts: list[Part] = []
    at = 0
    for start, end in merged:
        if start > at:
            parts.append(Part(text[at:start]))
        parts.append(Part(text[start:end], True))
        at = end
    if at < len(text) or not parts:
        parts.append(Part(text[at:]))
    return tuple(parts)


def _lines(items: Any, evidence: list[pb.Evidence], source: int) -> list[TextLine]:
    lines = []
    for item in items:
        text = item.text
        matching = [
            e
            for e in evidence
            if e.source == source and (e.start_ms, e.end_ms) == (item.start_ms, item.end_ms)
        ]
        spans = [_span(text, e) for e in matching]
        found = [s for s in spans if s is not None]
        lines.append(
            TextLine(
                start_ms=item.start_ms,
                end_ms=item.end_ms,
                parts=highlight(text, found),
                matched=bool(matching),
                stream_index=item.stream_index,
            )
        )
    return lines


def _span(text: str, e: pb.Evidence) -> tuple[int, int] | None:
    """Where in `text` the evidence matched: its span when known, else its snippet found in the
    text, else (on-screen text, scored whole) all of it."""
    if 0 <= e.span_start < e.span_end <= len(text):
        return e.span_start, e.span_end
    snippet = e.snippet.strip().removesuffix("...")
    if snippet:
        at = text.lower().find(snippet.lower())
        if at >= 0:
            return at, at + len(snippet)
    return (0, len(text)) if e.source == pb.SOURCE_ON_SCREEN_TEXT else None


def _evidence_view(e: pb.Evidence) -> EvidenceView:
    return EvidenceView(
        category=e.category,
        score=round(e.score, 3),
        modality=pb.Modality.Name(e.modality).removeprefix("MODALITY_"),
        source=pb.Source.Name(e.source).removeprefix("SOURCE_"),
        start_ms=e.start_ms,
        end_ms=e.end_ms,
        signal=e.signal,
        frame_index=e.frame_index,
        snippet=e.snippet,
        model=f"{e.model.name} {e.model.variant}".strip(),
    )


def block_categories(record: VerdictRecord, verdict: pb.Verdict) -> tuple[str, ...]:
    """What a BLOCK may name: the policy's categories (the verdict's when the policy document
    is not stored)."""
    document = record.policy.document or {}
    names = list((document.get("categories") or {}).keys()) if isinstance(document, dict) else []
    return tuple(dict.fromkeys([*names, *(c.category for c in verdict.categories)]))
