"""Turn a request's frames into uint8 RGB arrays at model resolution and their hashes, or say why not.

Geometry matches open_clip's eval transform (torchvision ``Resize(size)`` on the shortest side
+ ``CenterCrop`` for ``shortest``, plain ``Resize((size, size))`` for ``squash``, PIL bicubic
or bilinear); normalisation happens next to the model (see encoder.py). A unit test compares
the result with open_clip's own transform.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path

import numpy as np
from PIL import Image

from services.common import RequestError

from .dedup import dhash
from .models import Preprocess

# A decoded frame is a video frame, not a poster: refuse anything bigger before decoding it.
MAX_PIXELS = 40_000_000


class FrameError(RequestError):
    """A client error about the request's frames; `status` is the HTTP status to answer with."""

    def __init__(
        self, message: str, status: HTTPStatus = HTTPStatus.BAD_REQUEST, *, field: str = "frames"
    ) -> None:
        super().__init__(status, field, message)


@dataclass(frozen=True)
class RawShape:
    height: int
    width: int
    channels: int

    @classmethod
    def parse(cls, value: list[int] | None, size: int) -> RawShape:
        if value is None:
            raise FrameError(
                "frame_format 'raw' needs raw_shape: [height, width, 3] (uint8 RGB)", field="raw_shape"
            )
        if len(value) != 3:
            raise FrameError(f"raw_shape must be [height, width, 3]; got {value}", field="raw_shape")
        shape = cls(*value)
        if shape.channels != 3 or shape.height != size or shape.width != size:
            raise FrameError(
                f"raw frames must be {size}x{size}x3 uint8 RGB (this model's input resolution); got "
                f"raw_shape {value}. Send JPEG instead to let the service resize.",
                HTTPStatus.UNPROCESSABLE_ENTITY,
                field="raw_shape",
            )
        return shape

    @property
    def nbytes(self) -> int:
        return self.height * self.width * self.channels


def _interpolation(pre: Preprocess) -> Image.Resampling:
    return Image.Resampling.BILINEAR if pre.interpolation == "bilinear" else Image.Resampling.BICUBIC


def resize_to_model(image: Image.Image, pre: Preprocess) -> np.ndarray:
    """RGB uint8 (size, size, 3), resized and cropped exactly like open_clip's eval transform."""
    size = pre.size
    image = image.convert("RGB")
    width, height = image.size
    resample = _interpolation(pre)
    if pre.resize_mode == "squash":
        if (width, height) != (size, size):
            image = image.resize((size, size), resample)
        return np.asarray(image, dtype=np.uint8)
    # torchvision Resize(int): the short side becomes `size`, the long side int(size * long / short).
    if width <= height:
        new_w, new_h = size, int(size * height / width)
    else:
        new_w, new_h = int(size * width / height), size
    if (new_w, new_h) != (width, height):
        image = image.resize((new_w, new_h), resample)
    # torchvision CenterCrop: top/left offsets are round((new - size) / 2), half to even.
    top = round((new_h - size) / 2.0)
    left = round((new_w - size) / 2.0)
    return np.asarray(image, dtype=np.uint8)[top : top + size, left : left + size]


def open_image(data: bytes, pre: Preprocess, *, label: str) -> Image.Image:
    """Decode a JPEG (or any PIL-readable still image), at reduced size when that is free."""
    try:
        image = Image.open(io.BytesIO(data))
        width, height = image.size
        if width * height > MAX_PIXELS:
            raise FrameError(
                f"{label} is {width}x{height}; frames over {MAX_PIXELS} pixels are refused, downscale first",
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
            )
        if image.format == "JPEG":
            # Let libjpeg downscale by a power of two while keeping >= 2x the model size: the
            # bicubic resize still antialiases, and a large frame decodes at a fraction of the cost.
            image.draft("RGB", (2 * pre.size, 2 * pre.size))
        image.load()
    except FrameError:
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise FrameError(f"{label} is not a decodable image ({exc}); send JPEG bytes or raw uint8") from None
    return image


def decode_image(data: bytes, pre: Preprocess, *, label: str) -> np.ndarray:
    return resize_to_model(open_image(data, pre, label=label), pre)


def decode_raw(data: bytes, shape: RawShape, *, label: str) -> np.ndarray:
    if len(data) != shape.nbytes:
        raise FrameError(
            f"{label} has {len(data)} bytes; raw_shape [{shape.height}, {shape.width}, {shape.channels}] "
            f"uint8 needs exactly {shape.nbytes}"
        )
    return np.frombuffer(data, dtype=np.uint8).reshape(shape.height, shape.width, shape.channels)


def check_frames(n: int, timestamps_ms: list[int], max_frames: int) -> None:
    """The request's frame count and timestamps, before anything is read."""
    if n == 0:
        raise FrameError("the request has no frames: send one multipart file part named 'frames' per frame")
    if n > max_frames:
        raise FrameError(
            f"{n} frames in one request; the limit is {max_frames} (MODGATE_VISION_MAX_FRAMES_PER_REQUEST): "
            "split the frames over several requests",
            HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
        )
    if len(timestamps_ms) != n or any(t < 0 for t in timestamps_ms):
        raise FrameError(
            f"timestamps_ms must be a JSON list of one non-negative int per frame; got "
            f"{len(timestamps_ms)} for {n} frames",
            field="timestamps_ms",
        )


def decode_frames(
    paths: list[Path],
    timestamps_ms: list[int],
    *,
    frame_format: str,
    raw_shape: list[int] | None,
    pre: Preprocess,
    max_frame_bytes: int,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Model-resolution pixels and perceptual hashes (see dedup.py), one per frame."""
    shape = RawShape.parse(raw_shape, pre.size) if frame_format == "raw" else None
    pixels, hashes = [], []
    for i, path in enumerate(paths):
        label = f"frame {i} (timestamp {timestamps_ms[i]} ms)"
        size = path.stat().st_size
        if size > max_frame_bytes:
            raise FrameError(
                f"{label} is {size} bytes; the limit is {max_frame_bytes} (MODGATE_VISION_MAX_FRAME_BYTES)",
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
            )
        data = path.read_bytes()
        if shape is not None:
            frame = decode_raw(data, shape, label=label)
            pixels.append(frame)
            hashes.append(dhash(Image.fromarray(frame)))
        else:
            image = open_image(data, pre, label=label)
            pixels.append(resize_to_model(image, pre))
            hashes.append(dhash(image))
    return pixels, hashes
