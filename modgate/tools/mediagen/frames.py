"""The picture: a frame-number marker, a scene colour, a moving box, optional camera-like texture,
optional on-screen text."""

from __future__ import annotations

import functools

import numpy as np

from modgate.tools.mediagen.overlay import TextStyle, draw_text
from modgate.tools.mediagen.spec import MediaSpec

MARKER_BITS = 12  # frame numbers up to 4095
_SCENE_COLOURS = [(40, 90, 160), (200, 60, 40), (30, 160, 70), (220, 200, 50), (120, 40, 150)]


def draw_frame(index: int, spec: MediaSpec) -> np.ndarray:
    """RGB frame `index`: frame-number marker on top, scene colour, moving box."""
    h, w = spec.height, spec.width
    t = index / spec.fps
    scene = sum(1 for change in spec.scene_changes_s if t >= change)
    img = np.empty((h, w, 3), dtype=np.uint8)
    img[:] = _SCENE_COLOURS[scene % len(_SCENE_COLOURS)]
    if spec.textured:
        texture = _texture(h, w + 4 * h)
        pan = (index * 4) % (4 * h)
        grain = _grain(h, w)[index % len(_grain(h, w))]
        img[:] = np.clip(img.astype(np.int16) + texture[:, pan : pan + w] + grain, 0, 255).astype(np.uint8)
    marker_h = max(h // 6, 8)
    block_w = w // MARKER_BITS
    for bit in range(MARKER_BITS):
        on = (index >> (MARKER_BITS - 1 - bit)) & 1
        img[:marker_h, bit * block_w : (bit + 1) * block_w] = 255 if on else 0
    box = max(h // 5, 4)
    frames_total = max(int(spec.duration_s * spec.fps), 1)
    x = int((w - box) * (index % frames_total) / frames_total)
    y0 = marker_h + (h - marker_h - box) // 2
    img[y0 : y0 + box, x : x + box] = (250, 250, 250)
    for overlay in spec.overlays:
        if overlay.start_s <= t < overlay.end_s:
            style = TextStyle(
                size_px=overlay.size_px, outline_px=max(1, overlay.size_px // 16) if overlay.outline else 0
            )
            img = draw_text(img, overlay.text, style, overlay.center)
    return img


@functools.cache
def _texture(height: int, width: int) -> np.ndarray:
    """Smooth-ish noise (blurred blocks) in [-60, 60], one channel broadcast to RGB."""
    rng = np.random.default_rng(42)
    coarse = rng.integers(-60, 61, size=(height // 8 + 1, width // 8 + 1), dtype=np.int16)
    fine = rng.integers(-12, 13, size=(height, width), dtype=np.int16)
    blocks = np.repeat(np.repeat(coarse, 8, axis=0), 8, axis=1)[:height, :width]
    return (blocks + fine)[:, :, None]


@functools.cache
def _grain(height: int, width: int) -> list[np.ndarray]:
    """A few frames of sensor-like grain, cycled: detail no motion vector predicts."""
    rng = np.random.default_rng(43)
    return [rng.integers(-8, 9, size=(height, width, 1), dtype=np.int16) for _ in range(7)]


def read_frame_number(image: np.ndarray) -> int:
    """The frame number drawn by draw_frame, read from a (possibly downscaled) RGB frame."""
    h, w = image.shape[:2]
    marker_h = max(h // 6, 2)
    block_w = w / MARKER_BITS
    gray = image[: marker_h * 3 // 4, :, :].mean(axis=2)
    value = 0
    for bit in range(MARKER_BITS):
        x0 = int(bit * block_w + block_w * 0.25)
        x1 = max(int(bit * block_w + block_w * 0.75), x0 + 1)
        value = (value << 1) | int(gray[:, x0:x1].mean() > 127)
    return value
