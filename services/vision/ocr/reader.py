"""One request's on-screen text: which frames to read, reading them, and the result.

1. Every frame gets a small grey thumbnail (JPEG draft decoding: ~1/8 scale for free). A
   frame whose thumbnail matches a frame already read (every cell within change_tolerance)
   takes that frame's text: the cache, by picture, within the request. The service's dHash
   de-duplication is not reused here on purpose: it calls a frame with a 24-48 px caption a
   near-duplicate of the same frame without it, and a caption is exactly what OCR is for.
2. Frames closer than min_interval_ms after the last frame read (at a sampling rate above
   1 fps) are not read either; text shown for >= 2 s is still read at any rate.
3. Detection on each frame to read (span ``vision.ocr.detect``), recognition of the boxes
   found (span ``vision.ocr.recognize``), both in a worker thread, one request at a time per
   process (the engine's threads are the thread plan's share of the cores).
4. Lines below the policy's confidence or character minimum are dropped; frames -> cues.

Metrics: ``modgate_vision_ocr_frames_total`` (outcome: read / unchanged / not_read),
``modgate_vision_ocr_seconds`` (stage: detect per frame, recognize per box) and
``modgate_vision_ocr_boxes_total``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import anyio
import bentoml
import numpy as np
from opentelemetry import trace
from PIL import Image

from modgate import telemetry
from modgate.policy import Ocr
from modgate.wire import ModelInfo, OcrResult

from .cues import FrameText, merge_cues
from .engine import Line, OcrEngine

_tracer = trace.get_tracer(__name__)
THUMB_SIZE = (64, 36)

FRAMES = bentoml.metrics.Counter(
    name="modgate_vision_ocr_frames_total",
    documentation="Frames considered for on-screen text, by outcome (read, unchanged, not_read)",
    labelnames=["outcome"],
)
SECONDS = bentoml.metrics.Histogram(
    name="modgate_vision_ocr_seconds",
    documentation="OCR time: text detection per frame read, recognition per box",
    labelnames=["stage"],
    buckets=[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5],
)
BOXES = bentoml.metrics.Counter(
    name="modgate_vision_ocr_boxes_total", documentation="Text boxes recognized", labelnames=[]
)


@dataclass(frozen=True)
class FrameFiles:
    """A request's frame files as the service received them."""

    paths: Sequence[Path]
    timestamps_ms: Sequence[int]
    frame_format: str  # jpeg | raw
    raw_shape: Sequence[int] | None = None


def _open(path: Path, files: FrameFiles) -> Image.Image:
    if files.frame_format == "raw":
        assert files.raw_shape is not None
        return Image.fromarray(
            np.frombuffer(path.read_bytes(), dtype=np.uint8).reshape(tuple(files.raw_shape))
        )
    return Image.open(path)


def thumbnail(path: Path, files: FrameFiles) -> np.ndarray:
    """(36, 64) int16 grey thumbnail; JPEGs decode at reduced scale."""
    image = _open(path, files)
    if image.format == "JPEG":
        image.draft("L", (THUMB_SIZE[0] * 2, THUMB_SIZE[1] * 2))
    return np.asarray(image.convert("L").resize(THUMB_SIZE, Image.Resampling.BOX), dtype=np.int16)


def unchanged_from(thumbs: Sequence[np.ndarray], tolerance: int) -> list[int | None]:
    """For each frame, the first earlier frame to be read whose picture matches, else None."""
    result: list[int | None] = [None] * len(thumbs)
    read: list[int] = []
    for i, thumb in enumerate(thumbs):
        match = next((j for j in read if int(np.abs(thumbs[j] - thumb).max()) <= tolerance), None)
        result[i] = match
        if match is None:
            read.append(i)
    return result


def spaced(timestamps_ms: Sequence[int], candidates: Sequence[int], min_interval_ms: int) -> list[int]:
    """The candidates to read: at least min_interval_ms after the previous one read (time
    going backwards, the next video stream, starts over)."""
    chosen: list[int] = []
    last: int | None = None
    for i in candidates:
        t = timestamps_ms[i]
        if last is None or t < last or t - last >= min_interval_ms:
            chosen.append(i)
            last = t
    return chosen


def frame_text(lines: Sequence[Line], rules: Ocr) -> tuple[str, float]:
    """The lines the policy keeps, one per line, and their mean confidence."""
    kept = [
        line
        for line in lines
        if line.confidence >= rules.min_confidence
        and sum(ch.isalnum() for ch in line.text) >= rules.min_chars
    ]
    if not kept:
        return "", 0.0
    return "\n".join(line.text.strip() for line in kept), float(np.mean([line.confidence for line in kept]))


class OcrReader:
    def __init__(
        self,
        engine: OcrEngine,
        model: ModelInfo,
        *,
        change_tolerance: int,
        min_interval_ms: int,
    ) -> None:
        self.engine = engine
        self.model = model
        self.change_tolerance = change_tolerance
        self.min_interval_ms = min_interval_ms
        # One request's OCR at a time: the engine's threads are this process's share of cores.
        self._limiter = anyio.CapacityLimiter(1)

    async def read(self, files: FrameFiles, rules: Ocr) -> OcrResult:
        started = time.perf_counter()
        thumbs = await anyio.to_thread.run_sync(lambda: [thumbnail(p, files) for p in files.paths])
        same = unchanged_from(thumbs, self.change_tolerance)
        fresh = [i for i, s in enumerate(same) if s is None]
        to_read = spaced(files.timestamps_ms, fresh, self.min_interval_ms)
        t_detect = time.perf_counter()
        with _tracer.start_as_current_span(
            "vision.ocr.detect", attributes={telemetry.Attr.FRAME_COUNT: len(to_read)}
        ) as span:
            found = await anyio.to_thread.run_sync(self._detect, files, to_read, limiter=self._limiter)
            boxes = sum(len(b) for _, b in found.values())
            span.set_attribute("modgate.ocr.boxes", boxes)
        t_recognize = time.perf_counter()
        with _tracer.start_as_current_span("vision.ocr.recognize", attributes={"modgate.ocr.boxes": boxes}):
            lines = await anyio.to_thread.run_sync(self._recognize, found, limiter=self._limiter)
        done = time.perf_counter()
        return self._result(
            files, same, set(to_read), lines, boxes, (started, t_detect, t_recognize, done), rules
        )

    def _detect(
        self, files: FrameFiles, indices: Sequence[int]
    ) -> dict[int, tuple[np.ndarray, list[np.ndarray]]]:
        """Frames with boxes: index -> (BGR pixels, boxes)."""
        found = {}
        for i in indices:
            started = time.perf_counter()
            bgr = np.ascontiguousarray(np.asarray(_open(files.paths[i], files).convert("RGB"))[:, :, ::-1])
            boxes = self.engine.detect(bgr)
            SECONDS.labels(stage="detect").observe(time.perf_counter() - started)
            if boxes:
                found[i] = (bgr, boxes)
        return found

    def _recognize(self, found: dict[int, tuple[np.ndarray, list[np.ndarray]]]) -> dict[int, list[Line]]:
        lines = {}
        for i, (bgr, boxes) in found.items():
            started = time.perf_counter()
            lines[i] = self.engine.recognize(bgr, boxes)
            per_box = (time.perf_counter() - started) / len(boxes)
            for _ in boxes:
                SECONDS.labels(stage="recognize").observe(per_box)
            BOXES.inc(len(boxes))
        return lines

    def _result(
        self,
        files: FrameFiles,
        same: list[int | None],
        read: set[int],
        lines: dict[int, list[Line]],
        boxes: int,
        marks: tuple[float, float, float, float],
        rules: Ocr,
    ) -> OcrResult:
        texts: dict[int, tuple[str, float]] = {i: frame_text(lines.get(i, []), rules) for i in read}
        looked: list[FrameText] = []
        for i, original in enumerate(same):
            source = i if original is None else original
            if source not in texts:
                continue  # not read (spacing): its text is unknown, not absent
            text, confidence = texts[source]
            looked.append(FrameText(i, files.timestamps_ms[i], text, confidence))
        unchanged = sum(1 for s in same if s is not None and s in texts)
        FRAMES.labels(outcome="read").inc(len(read))
        FRAMES.labels(outcome="unchanged").inc(unchanged)
        FRAMES.labels(outcome="not_read").inc(len(same) - len(read) - unchanged)
        started, t_detect, t_recognize, done = marks
        return OcrResult(
            cues=merge_cues(looked),
            frames_read=len(read),
            frames_unchanged=unchanged,
            frames_with_text=sum(1 for f in looked if f.text),
            boxes=boxes,
            model=self.model,
            timings_ms={
                "thumbnails_ms": round((t_detect - started) * 1000, 2),
                "detect_ms": round((t_recognize - t_detect) * 1000, 2),
                "recognize_ms": round((done - t_recognize) * 1000, 2),
            },
        )
