"""PP-OCR on ONNX Runtime: text detection on a reduced frame, recognition of the boxes found.

Detection (DB) needs far fewer pixels than recognition: it runs on the frame scaled so its
longest side is `det_side` (multiples of 32, as the network needs), and its boxes are mapped
back to the frame as sent, from which each box is cropped (perspective-corrected, so slightly
rotated text comes out level) for the recognizer (CTC, 48 px high). So a frame without text
costs one small detection pass and nothing else. Pre- and post-processing are RapidOCR's own
(DB box extraction, CTC decoding), so results match RapidOCR's pipeline with these sizes.

Sessions run with the thread count the service was given (the stack's thread plan) and
without spin-waiting: other model threads share these cores.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .models import OcrModels

REC_HEIGHT = 48  # the recognizer's input height
REC_BATCH = 6  # crops per recognizer call (sorted by width, so padding stays small)
DET_MULTIPLE = 32
# DB post-processing: RapidOCR's defaults. A box_thresh of 0.6 (to save recognition time on
# busy textures) lost whole 24 px lines on busy backgrounds in the OCR quality set.
DET_THRESH = 0.3
DET_BOX_THRESH = 0.5
DET_UNCLIP = 1.6
DET_MAX_CANDIDATES = 200


@dataclass(frozen=True)
class Line:
    """One recognized box: its text, the recognizer's mean character probability, its box
    (4 corner points in frame pixels, clockwise from top-left)."""

    text: str
    confidence: float
    box: tuple[tuple[float, float], ...]


def _session(path: Path, threads: int) -> object:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    # Sleep rather than spin between ops: the CLIP encoder and other services share the cores.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


def _normalise(image: np.ndarray) -> np.ndarray:
    """HWC uint8 BGR -> NCHW float32 in [-1, 1] (PP-OCR's mean = std = 0.5)."""
    x = image.astype(np.float32) * (2.0 / 255.0) - 1.0
    return x.transpose(2, 0, 1)[np.newaxis]


def det_size(width: int, height: int, side: int) -> tuple[int, int]:
    """Detection input size: longest side `side` (never upscaled), both multiples of 32."""
    scale = min(1.0, side / max(width, height, 1))

    def snap(value: float) -> int:
        return max(DET_MULTIPLE, round(value * scale / DET_MULTIPLE) * DET_MULTIPLE)

    return snap(width), snap(height)


class OcrEngine:
    """The two ONNX sessions and their pre/post-processing. Not thread-safe per call order,
    but ONNX Runtime sessions are safe to run from several threads."""

    def __init__(self, models: OcrModels, *, det_side: int, threads: int) -> None:
        from rapidocr.ch_ppocr_det.utils import DBPostProcess
        from rapidocr.ch_ppocr_rec.utils import CTCLabelDecode

        self.det_side = det_side
        self._det = _session(models.detector, threads)
        self._rec = _session(models.recognizer, threads)
        self._det_input = self._det.get_inputs()[0].name  # type: ignore[attr-defined]
        self._rec_input = self._rec.get_inputs()[0].name  # type: ignore[attr-defined]
        # The character set travels in the recognizer's metadata.
        meta = self._rec.get_modelmeta().custom_metadata_map  # type: ignore[attr-defined]
        self._decode = CTCLabelDecode(character=meta["character"].splitlines())
        self._post = DBPostProcess(
            thresh=DET_THRESH,
            box_thresh=DET_BOX_THRESH,
            max_candidates=DET_MAX_CANDIDATES,
            unclip_ratio=DET_UNCLIP,
            score_mode="fast",
            use_dilation=True,
        )

    def detect(self, bgr: np.ndarray) -> list[np.ndarray]:
        """Text boxes (each (4, 2) float32, frame pixels) in reading order."""
        import cv2
        from rapidocr.ch_ppocr_det.main import TextDetector

        height, width = bgr.shape[:2]
        size = det_size(width, height, self.det_side)
        small = bgr if size == (width, height) else cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)
        pred = self._det.run(None, {self._det_input: _normalise(small)})[0]  # type: ignore[attr-defined]
        boxes, _ = self._post(pred, (height, width))
        if len(boxes) == 0:
            return []
        return [box.astype(np.float32) for box in TextDetector.sorted_boxes(boxes)]

    def recognize(self, bgr: np.ndarray, boxes: list[np.ndarray]) -> list[Line]:
        """Each box's text and confidence, in the order of `boxes`."""
        from rapidocr.utils.process_img import get_rotate_crop_image

        crops = [get_rotate_crop_image(bgr, box) for box in boxes]
        order = sorted(range(len(crops)), key=lambda i: crops[i].shape[1] / max(1, crops[i].shape[0]))
        texts: list[tuple[str, float]] = [("", 0.0)] * len(crops)
        for start in range(0, len(order), REC_BATCH):
            batch = order[start : start + REC_BATCH]
            for i, decoded in zip(batch, self._recognize_batch([crops[i] for i in batch]), strict=True):
                texts[i] = decoded
        return [
            Line(text=text, confidence=float(score), box=tuple((float(x), float(y)) for x, y in box))
            for (text, score), box in zip(texts, boxes, strict=True)
        ]

    def _recognize_batch(self, crops: list[np.ndarray]) -> list[tuple[str, float]]:
        import cv2

        widths = [max(8, math.ceil(REC_HEIGHT * c.shape[1] / max(1, c.shape[0]))) for c in crops]
        batch = np.zeros((len(crops), 3, REC_HEIGHT, max(widths)), dtype=np.float32)
        for row, (crop, width) in enumerate(zip(crops, widths, strict=True)):
            resized = cv2.resize(crop, (width, REC_HEIGHT), interpolation=cv2.INTER_LINEAR)
            batch[row, :, :, :width] = _normalise(resized)[0]
        preds = self._rec.run(None, {self._rec_input: batch})[0]  # type: ignore[attr-defined]
        lines, _ = self._decode(preds)
        return [(str(text), float(score)) for text, score in lines]
