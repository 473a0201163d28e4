"""The OCR quality set: 720p frames with one line of known text each, over the situations
on-screen text meets (tests/services/vision/test_vision_ocr_quality.py, bench.ocr).

Every font of overlay.FONTS x every size x VARIANTS_PER_CELL frames; each frame's background
(noise, gradient, busy shapes), style (plain, outline, shadow) and angle (0 or up to +-4 deg)
rotate through the cells, and its text is drawn from PHRASES, so the set is deterministic.
The text colour contrasts with the background under it (as an editor would pick it).
"""

from __future__ import annotations

import io
import itertools
from dataclasses import dataclass
from typing import Literal

import numpy as np
from PIL import Image, ImageDraw

from modgate.tools.mediagen.overlay import FONTS, TextStyle, draw_text

Background = Literal["noise", "gradient", "busy"]
Look = Literal["plain", "outline", "shadow"]
WIDTH, HEIGHT = 1280, 720
SIZES = (20, 24, 32, 48, 72)
VARIANTS_PER_CELL = 8  # 6 fonts x 5 sizes x 8 = 240 frames
BACKGROUNDS: tuple[Background, ...] = ("noise", "gradient", "busy")
LOOKS: tuple[Look, ...] = ("plain", "outline", "shadow")
ANGLES = (0.0, 3.0, 0.0, -4.0)
PHRASES = (
    "Double your bitcoin in 24 hours",
    "Link in bio for the full menu",
    "Send 0.1 BTC to get 0.2 back",
    "Free giveaway ends tonight",
    "Subscribe for more recipes",
    "Limited offer 90% off today",
    "DM me to join the team",
    "Tutorial part 3 of 5",
    "Guaranteed returns every week",
    "Meet us at the harbour at 8",
    "New video every Friday",
    "Claim your prize now",
)


@dataclass(frozen=True)
class QualityFrame:
    image: np.ndarray  # (720, 1280, 3) uint8 RGB
    text: str
    font: str
    size_px: int
    background: Background
    look: Look
    angle_deg: float


def background(kind: Background, rng: np.random.Generator) -> np.ndarray:
    if kind == "noise":  # camera-like: a colour, blotches of +-60 and per-pixel grain of +-16
        base = rng.integers(40, 216, size=3).astype(np.int16)
        coarse = rng.integers(0, 256, size=(HEIGHT // 16 + 1, WIDTH // 16 + 1, 3), dtype=np.uint8)
        blotches = np.asarray(
            Image.fromarray(coarse).resize((WIDTH, HEIGHT), Image.Resampling.BICUBIC), np.int16
        )
        grain = rng.integers(-16, 17, size=(HEIGHT, WIDTH, 1), dtype=np.int16)
        return np.clip(base + (blotches - 128) * 60 // 128 + grain, 0, 255).astype(np.uint8)
    if kind == "gradient":
        a, b = rng.integers(0, 256, size=(2, 3))
        angle = rng.uniform(0, np.pi)
        ys, xs = np.mgrid[0:HEIGHT, 0:WIDTH]
        t = (np.cos(angle) * xs / WIDTH + np.sin(angle) * ys / HEIGHT + 1) / 2.5
        return (a * (1 - t[..., None]) + b * t[..., None]).clip(0, 255).astype(np.uint8)
    image = Image.new("RGB", (WIDTH, HEIGHT), tuple(int(c) for c in rng.integers(0, 256, 3)))
    draw = ImageDraw.Draw(image)
    for _ in range(120):  # busy: overlapping shapes and lines in many colours
        x0, y0 = int(rng.integers(0, WIDTH)), int(rng.integers(0, HEIGHT))
        x1, y1 = x0 + int(rng.integers(10, 240)), y0 + int(rng.integers(10, 160))
        fill = tuple(int(c) for c in rng.integers(0, 256, 3))
        shape = int(rng.integers(0, 3))
        if shape == 0:
            draw.rectangle((x0, y0, x1, y1), fill=fill)
        elif shape == 1:
            draw.ellipse((x0, y0, x1, y1), fill=fill)
        else:
            draw.line((x0, y0, x1, y1), fill=fill, width=int(rng.integers(1, 6)))
    return np.asarray(image)


def _text_color(image: np.ndarray, center: tuple[float, float]) -> tuple[int, int, int]:
    x, y = int(center[0] * WIDTH), int(center[1] * HEIGHT)
    patch = image[max(0, y - 40) : y + 40, max(0, x - 200) : x + 200]
    return (20, 20, 20) if float(patch.mean()) > 140 else (255, 255, 255)


def quality_set(seed: int = 0) -> list[QualityFrame]:
    rng = np.random.default_rng(seed)
    frames = []
    combos = itertools.cycle(itertools.product(BACKGROUNDS, LOOKS))
    phrases = itertools.cycle(PHRASES)
    angles = itertools.cycle(ANGLES)
    for font, size in itertools.product(FONTS, SIZES):
        for _ in range(VARIANTS_PER_CELL):
            kind, look = next(combos)
            text, angle = next(phrases), next(angles)
            image = background(kind, rng)
            center = (float(rng.uniform(0.35, 0.65)), float(rng.uniform(0.2, 0.8)))
            style = TextStyle(
                font=font,
                size_px=size,
                color=_text_color(image, center),
                outline_px=max(1, size // 16) if look == "outline" else 0,
                shadow=look == "shadow",
                angle_deg=angle,
            )
            frames.append(
                QualityFrame(draw_text(image, text, style, center), text, font, size, kind, look, angle)
            )
    return frames


def edit_distance(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def cer(truth: str, read: str) -> float:
    """Character error rate, case and spacing folded (the text service folds both too)."""
    t, r = " ".join(truth.lower().split()), " ".join(read.lower().split())
    return edit_distance(t, r) / max(1, len(t))


def as_sent(image: np.ndarray, side: int, jpeg_quality: int) -> np.ndarray:
    """BGR pixels of an RGB `image` as the vision service receives it from the gateway: longest
    side `side`, through a JPEG of `jpeg_quality` (the gateway's JPEG_QUALITY)."""
    picture = Image.fromarray(image)
    scale = min(1.0, side / max(picture.size))
    picture = picture.resize(
        (round(picture.width * scale), round(picture.height * scale)), Image.Resampling.BOX
    )
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=jpeg_quality)
    decoded = np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))
    return np.ascontiguousarray(decoded[:, :, ::-1])
