"""Evidence thumbnails: only the frames VISUAL evidence points at, small, decodable JPEGs."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from gateway.ledger.thumbnails import evidence_frames, evidence_thumbnails
from gateway.media.types import SampledFrame
from modgate.v1 import moderation_pb2 as pb


def frames(count: int, stream_index: int = 0) -> list[SampledFrame]:
    return [
        SampledFrame(timestamp_ms=1000 * i, image=np.full((360, 640, 3), 20 * i, np.uint8), keyframe=i == 0,
                     stream_index=stream_index)
        for i in range(count)
    ]  # fmt: skip


def evidence(
    modality: int, *, frame_index: int = -1, start_ms: int = 0, stream_index: int = -1
) -> pb.Evidence:
    return pb.Evidence(
        modality=modality, frame_index=frame_index, start_ms=start_ms, stream_index=stream_index
    )


def test_frame_evidence_names_its_frame_and_timed_evidence_the_nearest_frame() -> None:
    verdict = pb.Verdict(
        evidence=[
            evidence(pb.MODALITY_VISUAL, frame_index=4),
            evidence(pb.MODALITY_AUDIO, start_ms=2000),  # not a picture
            evidence(pb.MODALITY_VISUAL, start_ms=6400),  # on-screen text from 6.4 s
            evidence(pb.MODALITY_VISUAL, frame_index=4),  # the same frame again
            evidence(pb.MODALITY_TEXT, start_ms=1000),
        ]
    )
    assert evidence_frames(verdict, frames(8), limit=8) == [4, 6]
    assert evidence_frames(verdict, frames(8), limit=1) == [4]
    assert evidence_frames(verdict, [], limit=8) == []


def test_timed_evidence_prefers_a_frame_of_its_own_stream() -> None:
    both = frames(3, stream_index=0) + frames(3, stream_index=2)
    verdict = pb.Verdict(evidence=[evidence(pb.MODALITY_VISUAL, start_ms=1000, stream_index=2)])
    assert evidence_frames(verdict, both, limit=8) == [4]


def test_thumbnails_are_small_jpegs_of_those_frames() -> None:
    verdict = pb.Verdict(evidence=[evidence(pb.MODALITY_VISUAL, frame_index=2)])
    [thumb] = evidence_thumbnails(verdict, frames(3), max_side=160, limit=8)
    image = Image.open(io.BytesIO(thumb.jpeg))
    assert image.format == "JPEG" and image.size == (thumb.width, thumb.height) == (160, 90)
    assert (thumb.frame_index, thumb.time_ms) == (2, 2000) and len(thumb.jpeg) < 8000
    assert abs(int(np.asarray(image).mean()) - 40) <= 2  # frame 2's pixels, not another frame's
