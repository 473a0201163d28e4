"""On-screen text drawn into frames, as video editors burn it in: a Debian font at a pixel
size, optionally outlined or shadowed, optionally slightly rotated.

Fonts come from Debian packages (`make install` installs them with apt); :func:`font_path`
names the package to install when one is missing.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

FONT_ROOT = Path("/usr/share/fonts/truetype")
# name -> (Debian package, file under FONT_ROOT)
FONTS: dict[str, tuple[str, str]] = {
    "DejaVu Sans": ("fonts-dejavu-core", "dejavu/DejaVuSans.ttf"),
    "DejaVu Serif Bold": ("fonts-dejavu-core", "dejavu/DejaVuSerif-Bold.ttf"),
    "Liberation Sans": ("fonts-liberation", "liberation/LiberationSans-Regular.ttf"),
    "Liberation Serif": ("fonts-liberation", "liberation/LiberationSerif-Regular.ttf"),
    "Noto Sans Bold": ("fonts-noto-core", "noto/NotoSans-Bold.ttf"),
    "FreeSans": ("fonts-freefont-ttf", "freefont/FreeSans.ttf"),
}
DEFAULT_FONT = "DejaVu Sans"


def font_path(name: str) -> Path:
    if name not in FONTS:
        raise ValueError(f"unknown font {name!r}; known: {', '.join(FONTS)}")
    package, relative = FONTS[name]
    path = FONT_ROOT / relative
    if not path.is_file():
        raise FileNotFoundError(
            f"font {name!r} ({path}) is missing: apt-get install {package} (make install does)"
        )
    return path


@functools.cache
def _font(name: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(font_path(name)), size)


@dataclass(frozen=True)
class TextStyle:
    font: str = DEFAULT_FONT
    size_px: int = 48  # the font's em size in pixels of the frame it is drawn on
    color: tuple[int, int, int] = (255, 255, 255)
    outline_px: int = 0  # a contrasting stroke around the glyphs
    shadow: bool = False  # a dark copy offset down-right
    angle_deg: float = 0.0  # counter-clockwise


def _contrast(color: tuple[int, int, int]) -> tuple[int, int, int]:
    return (0, 0, 0) if sum(color) > 382 else (255, 255, 255)


def render_text(text: str, style: TextStyle) -> Image.Image:
    """The text as an RGBA image (transparent around it), rotated by the style's angle."""
    font = _font(style.font, style.size_px)
    pad = style.outline_px + max(2, style.size_px // 8)
    left, top, right, bottom = font.getbbox(text, stroke_width=style.outline_px)
    layer = Image.new("RGBA", (right - left + 2 * pad, bottom - top + 2 * pad), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    origin = (pad - left, pad - top)
    if style.shadow:
        offset = max(2, style.size_px // 12)
        draw.text((origin[0] + offset, origin[1] + offset), text, font=font, fill=(0, 0, 0, 170))
    draw.text(
        origin,
        text,
        font=font,
        fill=(*style.color, 255),
        stroke_width=style.outline_px,
        stroke_fill=(*_contrast(style.color), 255),
    )
    if style.angle_deg:
        layer = layer.rotate(style.angle_deg, resample=Image.Resampling.BICUBIC, expand=True)
    return layer


def draw_text(image: np.ndarray, text: str, style: TextStyle, center: tuple[float, float]) -> np.ndarray:
    """`image` (RGB uint8) with `text` drawn centred at `center` (fractions of width, height)."""
    frame = Image.fromarray(image).convert("RGBA")
    layer = render_text(text, style)
    x = round(center[0] * frame.width - layer.width / 2)
    y = round(center[1] * frame.height - layer.height / 2)
    frame.alpha_composite(layer, (max(0, x), max(0, y)))
    return np.asarray(frame.convert("RGB"))
