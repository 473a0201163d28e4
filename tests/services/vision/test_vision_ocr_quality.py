"""The OCR quality set (modgate.tools.mediagen.ocrset): 240 generated 720p frames with one line
of known text each, in 6 Debian fonts, 20-72 px, on noise, gradients and busy shapes, plain,
outlined or shadowed, some slightly rotated. Each frame goes through what the pipeline does
to it (downscaled to the gateway's OCR frame size, JPEG at the gateway's quality) and the
vision service's engine and line filters. Character error rate on text >= 24 px <= 10%; the
table by size and font is printed (pytest -s shows it)."""

from __future__ import annotations

import statistics
from collections import defaultdict

import pytest

from gateway.config import GatewayConfig
from gateway.upstreams.services import JPEG_QUALITY
from modgate.policy import Ocr
from modgate.tools.mediagen.ocrset import SIZES, as_sent, cer, quality_set
from modgate.tools.mediagen.overlay import FONTS
from services.vision.config import VisionSettings
from services.vision.ocr.engine import OcrEngine
from services.vision.ocr.models import resolve_ocr_models
from services.vision.ocr.reader import frame_text

MAX_CER = 0.10
MIN_SIZE_PX = 24


def table(errors: dict[tuple[int, str], list[float]]) -> str:
    fonts = list(FONTS)
    rows = ["CER % by size (rows) and font (columns): " + " | ".join(fonts)]
    for size in SIZES:
        cells = [f"{100 * statistics.mean(errors[(size, font)]):5.1f}" for font in fonts]
        every = [e for font in fonts for e in errors[(size, font)]]
        rows.append(f"{size:3d} px  " + "  ".join(cells) + f"   all {100 * statistics.mean(every):5.1f}")
    return "\n".join(rows)


# 240 frames through detection and recognition: ~1 min of CPU, several on a shared machine.
pytestmark = pytest.mark.timeout(1800)


@pytest.fixture(scope="module")
def engine() -> OcrEngine:
    settings = VisionSettings(allow_uncalibrated=True)
    return OcrEngine(resolve_ocr_models(), det_side=settings.ocr_det_side, threads=1)


def test_character_error_rate_on_text_of_24_px_and_more_is_at_most_10_percent(engine: OcrEngine) -> None:
    frames = quality_set()
    assert len(frames) >= 200 and len({f.font for f in frames}) >= 4
    side = GatewayConfig().split_options(ocr=True).frame_max_side
    rules = Ocr()
    errors: dict[tuple[int, str], list[float]] = defaultdict(list)
    for frame in frames:
        bgr = as_sent(frame.image, side, JPEG_QUALITY)
        boxes = engine.detect(bgr)
        read, _ = frame_text(engine.recognize(bgr, boxes) if boxes else [], rules)
        errors[(frame.size_px, frame.font)].append(cer(frame.text, " ".join(read.split())))
    print("\n" + table(errors))
    large = [e for (size, _), values in errors.items() if size >= MIN_SIZE_PX for e in values]
    assert statistics.mean(large) <= MAX_CER, table(errors)
