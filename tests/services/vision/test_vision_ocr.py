"""On-screen text in the vision service: which frames are read, cues from consecutive frames,
and the real PP-OCR engine on generated frames (no service process: the reader is the unit)."""

from __future__ import annotations

import io
from pathlib import Path

import anyio
import numpy as np
import pytest
from PIL import Image

from modgate.policy import Ocr
from modgate.tools.mediagen.overlay import TextStyle, draw_text
from services.vision.config import VisionSettings
from services.vision.ocr.cues import FrameText, merge_cues, same_text
from services.vision.ocr.engine import det_size
from services.vision.ocr.models import OcrModelError, resolve_ocr_models
from services.vision.ocr.reader import FrameFiles, spaced, unchanged_from
from services.vision.ocr.setup import build_reader, ocr_models


def test_consecutive_frames_with_the_same_text_make_one_cue_that_ends_where_the_text_is_gone() -> None:
    frames = [
        FrameText(0, 0, "", 0.0),
        FrameText(1, 1000, "Double your BTC", 0.9),
        FrameText(2, 2000, "Double your BTG", 0.8),  # one misread character does not split it
        FrameText(3, 3000, "", 0.0),
        FrameText(4, 4000, "Subscribe", 0.95),
    ]
    cues = merge_cues(frames)
    assert [(c.text, c.start_ms, c.end_ms, c.frames) for c in cues] == [
        ("Double your BTC", 1000, 3000, [1, 2]),
        ("Subscribe", 4000, 5000, [4]),  # the last one lasts one frame gap
    ]
    assert cues[0].confidence == 0.9  # the clearest reading stands for the cue


def test_time_going_backwards_a_second_video_stream_ends_every_cue() -> None:
    frames = [FrameText(0, 0, "hello world", 0.9), FrameText(1, 1000, "hello world", 0.9)]
    frames.append(FrameText(2, 0, "hello world", 0.9))
    assert [(c.start_ms, c.end_ms, c.frames) for c in merge_cues(frames)] == [
        (0, 2000, [0, 1]),
        (0, 1000, [2]),
    ]
    assert not same_text("hello world", "goodbye moon")


def test_a_frame_matching_one_already_read_is_not_read_again_and_reading_is_spaced() -> None:
    flat = np.zeros((36, 64), np.int16)
    bright = flat + 200
    assert unchanged_from([flat, flat + 5, bright, flat + 30], tolerance=10) == [None, 0, None, None]
    # 2 fps sampling, at least 500 ms apart: every frame; at least 1000: every other.
    assert spaced([0, 500, 1000, 1500], [0, 1, 2, 3], 500) == [0, 1, 2, 3]
    assert spaced([0, 500, 1000, 1500], [0, 1, 2, 3], 1000) == [0, 2]
    assert spaced([0, 1000, 0, 1000], [0, 1, 2, 3], 1000) == [0, 1, 2, 3]  # the next stream starts over


def test_detection_runs_at_reduced_size_in_multiples_of_32() -> None:
    assert det_size(960, 540, 640) == (640, 352)
    assert det_size(320, 180, 640) == (320, 192)  # never upscaled


def test_a_model_file_that_is_not_the_pinned_one_stops_the_start_with_the_fix(tmp_path: Path) -> None:
    (tmp_path / "PP-OCRv6_det_small.onnx").write_bytes(b"not a model")
    with pytest.raises(OcrModelError, match=r"sha256.*MODGATE_VISION_OCR_ENABLED=false"):
        resolve_ocr_models(tmp_path)
    assert ocr_models(VisionSettings(ocr_enabled=False, allow_uncalibrated=True)) is None


def _jpeg(image: np.ndarray, path: Path) -> Path:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=90)
    path.write_bytes(buffer.getvalue())
    return path


def test_the_reader_reads_text_frames_reuses_unchanged_ones_and_merges_cues(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    base = rng.integers(60, 120, size=(540, 960, 3), dtype=np.uint8)
    offer = draw_text(base, "Double your bitcoin today", TextStyle(size_px=40, outline_px=2), (0.5, 0.7))
    pictures = [base, offer, offer.copy(), offer, base]
    paths = [_jpeg(p, tmp_path / f"f{i}.jpg") for i, p in enumerate(pictures)]
    settings = VisionSettings(allow_uncalibrated=True, ocr_threads=1)
    reader = build_reader(ocr_models(settings), settings)
    assert reader is not None
    files = FrameFiles(paths, [0, 1000, 2000, 3000, 4000], "jpeg")

    result = anyio.run(reader.read, files, Ocr())

    assert result.frames_read == 2  # the plain background and the first frame with text
    assert result.frames_unchanged == 3
    assert result.frames_with_text == 3
    [cue] = result.cues
    assert "double your bitcoin today" in cue.text.lower()
    assert (cue.start_ms, cue.end_ms, cue.frames) == (1000, 4000, [1, 2, 3])
    assert cue.confidence > 0.8
    assert result.model.name == "PP-OCRv6-small"
    assert set(result.timings_ms) == {"thumbnails_ms", "detect_ms", "recognize_ms"}
    # A policy's confidence floor above any reading leaves no text.
    strict = anyio.run(reader.read, files, Ocr(min_confidence=1.0))
    assert strict.cues == [] and strict.frames_with_text == 0


def test_a_policy_with_ocr_off_reads_no_frame_and_returns_no_text() -> None:
    from modgate.policy import load_policies
    from services.vision.ocr.setup import read_beside

    class Reader:
        calls = 0

        async def read(self, files: FrameFiles, rules: Ocr) -> None:
            Reader.calls += 1

    async def encode() -> str:
        return "embeddings"

    policy = load_policies()["default"]
    off = policy.model_copy(update={"ocr": Ocr(enabled=False)})
    files = FrameFiles([], [], "jpeg")
    assert anyio.run(read_beside, encode(), Reader(), off, files) == ("embeddings", None)
    assert anyio.run(read_beside, encode(), None, policy, files) == ("embeddings", None)
    assert Reader.calls == 0
