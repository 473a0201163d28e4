"""Near-duplicate frames within one request, by perceptual difference hash (dHash).

Each frame (already at model resolution) is shrunk to 9x8 per colour channel and each bit says
whether a pixel is brighter than its right neighbour: 64 bits per channel. Hashing the channels
separately (rather than grey) keeps a red circle and a blue circle in the same place apart,
which a grey hash would call identical. Two frames are near-duplicates when every channel's
Hamming distance is <= the configured distance. A duplicate's scores are copied from the
earlier frame it matches, so the model never sees it.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

HASH_W, HASH_H = 9, 8


def dhash(frame: np.ndarray) -> np.ndarray:
    """(3, 64) bool: per-channel horizontal-gradient signs of an (H, W, 3) uint8 frame."""
    small = np.stack(
        [
            np.asarray(
                Image.fromarray(np.ascontiguousarray(frame[:, :, c])).resize(
                    (HASH_W, HASH_H), Image.Resampling.BOX
                ),
                dtype=np.int16,
            )
            for c in range(3)
        ]
    )
    return (small[:, :, 1:] > small[:, :, :-1]).reshape(3, -1)


def find_duplicates(hashes: list[np.ndarray], max_distance: int) -> list[int | None]:
    """For each frame, the index of the first earlier *kept* frame it nearly duplicates, else None."""
    result: list[int | None] = [None] * len(hashes)
    if max_distance < 0:
        return result
    kept: list[int] = []
    for i, current in enumerate(hashes):
        for j in kept:
            # max over channels of the per-channel Hamming distance
            if int((hashes[j] != current).sum(axis=1).max()) <= max_distance:
                result[i] = j
                break
        else:
            kept.append(i)
    return result
