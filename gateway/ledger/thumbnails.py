"""Evidence-frame thumbnails: small JPEGs of the frames a verdict's VISUAL evidence points at,
kept with the verdict for the review console (blurred there until a reviewer reveals one).

A frame-scored evidence names its frame (frame_index); on-screen text and hash evidence name a
time span: the sampled frame of that video stream nearest its start stands for it. Only those
frames, at most `limit`, each at most `max_side` pixels on its longest side.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

from PIL import Image

from gateway.media.types import SampledFrame
from modgate.store.records import Thumbnail
from modgate.v1 import moderation_pb2 as pb

JPEG_QUALITY = 75


def evidence_frames(verdict: pb.Verdict, frames: Sequence[SampledFrame], limit: int) -> list[int]:
    """Indices into `frames` of the VISUAL evidence's frames, in evidence order, no repeats."""
    chosen: list[int] = []
    for evidence in verdict.evidence:
        if len(chosen) >= limit:
            break
        if evidence.modality != pb.MODALITY_VISUAL or not frames:
            continue
        index = (
            evidence.frame_index if 0 <= evidence.frame_index < len(frames) else _nearest(evidence, frames)
        )
        if index is not None and index not in chosen:
            chosen.append(index)
    return chosen


def _nearest(evidence: pb.Evidence, frames: Sequence[SampledFrame]) -> int | None:
    same_stream = [
        i
        for i, f in enumerate(frames)
        if evidence.stream_index < 0 or f.stream_index == evidence.stream_index
    ]
    candidates = same_stream or list(range(len(frames)))
    return min(candidates, key=lambda i: abs(frames[i].timestamp_ms - evidence.start_ms), default=None)


def thumbnail(frame: SampledFrame, index: int, max_side: int) -> Thumbnail:
    # Every k-th pixel first, down to about twice the size, then a proper resample: the encode
    # sits in the reply path, and resampling a 720p frame whole cost ~8x more (bench.thumbnails).
    pixels = frame.image
    step = max(1, max(pixels.shape[:2]) // (2 * max_side))
    image = Image.fromarray(pixels[::step, ::step] if step > 1 else pixels)
    image.thumbnail((max_side, max_side), reducing_gap=2.0)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return Thumbnail(
        frame_index=index,
        time_ms=frame.timestamp_ms,
        width=image.width,
        height=image.height,
        jpeg=buffer.getvalue(),
        stream_index=max(frame.stream_index, 0),
    )


def evidence_thumbnails(
    verdict: pb.Verdict, frames: Sequence[SampledFrame], *, max_side: int, limit: int
) -> tuple[Thumbnail, ...]:
    return tuple(thumbnail(frames[i], i, max_side) for i in evidence_frames(verdict, frames, limit))
