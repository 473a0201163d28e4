"""Near-duplicate frames within one request, by a perceptual difference hash (dHash).

A frame is shrunk to 9x8 cells (box filter) in each of Y, Cb and Cr, and every pair of
horizontal neighbours gives two bits: "brighter by more than MARGIN" and "darker by more than
MARGIN". The dead zone keeps flat, noisy regions (sky, walls, compression noise) from flipping
bits at random, and hashing luma and chroma separately keeps a red circle and a blue circle in
the same place apart, which a grey hash calls identical. Two frames are near-duplicates when
every channel's Hamming distance (out of 112 bits) is <= the configured distance. A duplicate's
scores are copied from the earlier frame it matches, so the model never sees it.

Hashes are taken from the decoded frame before it is resized for the model, so the decision
does not depend on the model's input size (stable and canary agree on what is a duplicate).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

HASH_W, HASH_H = 9, 8
MARGIN = 3  # in 0-255 units of a cell's mean value


def dhash(image: Image.Image) -> np.ndarray:
    """(3, 112) bool: two-sided gradient codes of Y, Cb and Cr."""
    cells = np.stack(
        [
            np.asarray(channel.resize((HASH_W, HASH_H), Image.Resampling.BOX), dtype=np.int16)
            for channel in image.convert("YCbCr").split()
        ]
    )
    step = cells[:, :, 1:] - cells[:, :, :-1]
    return np.concatenate([(step > MARGIN).reshape(3, -1), (step < -MARGIN).reshape(3, -1)], axis=1)


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
