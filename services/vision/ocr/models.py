"""The OCR model files: PP-OCR detection and recognition ONNX models shipped inside the rapidocr
wheel (Apache-2.0, `pip install rapidocr==3.10.0`), each checked against a pinned sha256.

Nothing is downloaded: RapidOCR's own loader fetches missing models from the network, so the
service builds its ONNX Runtime sessions itself from these files (engine.py). A missing or
different file stops the service at start with the fix in the message, unless OCR is turned
off (MODGATE_VISION_OCR_ENABLED=false).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from modgate.wire import ModelInfo
from services.common import verify_sha256

DETECTOR_FILE = "PP-OCRv6_det_small.onnx"
RECOGNIZER_FILE = "PP-OCRv6_rec_small.onnx"
PINS = {
    DETECTOR_FILE: "090f04abcd9d9a7498bc4ebf677e4cb9bdce1fe4197ddb7e529f1ef44e1ff94f",
    RECOGNIZER_FILE: "6f327246b50388f3c176ae304bd95767ea6dc0c9ae92153ef8cbe210b3c14884",
}
MODEL_NAME = "PP-OCRv6-small"
ENGINE = "rapidocr/onnxruntime"
REMEDY = (
    "install the pinned wheel (pip install rapidocr==3.10.0), point MODGATE_VISION_OCR_MODEL_DIR at a "
    "folder holding both files, or turn on-screen text off with MODGATE_VISION_OCR_ENABLED=false"
)


class OcrModelError(RuntimeError):
    """The OCR model files cannot be used; the message names the file and the fix."""


@dataclass(frozen=True)
class OcrModels:
    detector: Path
    recognizer: Path

    def info(self, variant: str) -> ModelInfo:
        # Both files are pinned, so the detector's digest prefix names the pair.
        version = f"{PINS[DETECTOR_FILE][:8]}-{PINS[RECOGNIZER_FILE][:8]}"
        return ModelInfo(name=MODEL_NAME, version=version, engine=ENGINE, variant=variant)  # type: ignore[arg-type]


def package_model_dir() -> Path | None:
    """The models folder of the installed rapidocr package (None when it is not installed)."""
    spec = importlib.util.find_spec("rapidocr")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "models"


def resolve_ocr_models(model_dir: Path | None = None) -> OcrModels:
    """The detector and recognizer files in `model_dir` (default: rapidocr's), sha256-checked."""
    directory = model_dir or package_model_dir()
    if directory is None:
        raise OcrModelError(f"the rapidocr package is not installed: {REMEDY}")
    paths = {name: directory / name for name in PINS}
    for name, path in paths.items():
        verify_sha256(path, PINS[name], what="OCR model", remedy=REMEDY, error=OcrModelError)
    return OcrModels(detector=paths[DETECTOR_FILE], recognizer=paths[RECOGNIZER_FILE])
