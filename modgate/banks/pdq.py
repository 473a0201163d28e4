"""PDQ hashes of decoded frames, with PDQ's quality score (pdqhash: Meta's reference PDQ).

A hash is 256 bits, kept as 32 bytes in the bit order threatexchange writes as hex (the first
hex digit holds bits 0-3), so a hash banked from an HMA list and one computed here compare
directly. Quality (0-100) measures how much gradient the frame has: HMA does not match frames
under 50 (flat colour, black frames, fades), and neither does modgate by default.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pdqhash

PDQ_BYTES = 32


def pdq_frame(rgb: np.ndarray) -> tuple[bytes, int]:
    """(32-byte hash, quality) of one (H, W, 3) uint8 RGB frame."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"PDQ needs an (H, W, 3) uint8 RGB frame; got {rgb.shape} {rgb.dtype}")
    bits, quality = pdqhash.compute(np.ascontiguousarray(rgb))
    return np.packbits(np.asarray(bits, dtype=np.uint8)).tobytes(), int(quality)


def pdq_frames(frames: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """((N, 32) uint8 hashes, (N,) int16 qualities) of RGB frames, in order."""
    codes = np.empty((len(frames), PDQ_BYTES), dtype=np.uint8)
    qualities = np.empty(len(frames), dtype=np.int16)
    for i, frame in enumerate(frames):
        code, quality = pdq_frame(frame)
        codes[i] = np.frombuffer(code, dtype=np.uint8)
        qualities[i] = quality
    return codes, qualities


def codes_from_hex(hexes: Sequence[str]) -> np.ndarray:
    """(N, 32) uint8 from 64-digit hex strings."""
    if not hexes:
        return np.empty((0, PDQ_BYTES), dtype=np.uint8)
    return np.frombuffer(bytes.fromhex("".join(hexes)), dtype=np.uint8).reshape(-1, PDQ_BYTES).copy()


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Bitwise Hamming distance between rows of two (N, 32) uint8 arrays (broadcasting)."""
    return np.bitwise_count(np.bitwise_xor(a, b)).sum(axis=-1, dtype=np.int32)
