"""Malformed input: interrupted uploads, random bytes, valid files under the wrong name."""

from __future__ import annotations

from pathlib import Path

import numpy as np

ZERO_BYTES = b""


def truncated(data: bytes, fraction: float = 0.5) -> bytes:
    """The first `fraction` of a valid file (an interrupted upload)."""
    return data[: int(len(data) * fraction)]


def random_bytes(size: int = 64 * 1024, seed: int = 1) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes()


def save(data: bytes, path: Path) -> Path:
    """Write bytes under any name (e.g. a webm saved as .mp4, random bytes as .mkv)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path
