"""Near-duplicate frames are not re-encoded: their scores are copied and the count reported."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from services.vision.dedup import dhash, find_duplicates
from tests.services.vision.conftest import VisionProcess
from tests.services.vision.test_vision_semantic import RED_CIRCLE_POLICY
from tests.services.vision.tinyclip import jpeg_bytes, shape_image, shape_jpeg
from tests.services.vision.vision_http import score


def test_jpeg_requantisation_is_a_near_duplicate_and_a_colour_change_is_not() -> None:
    red = shape_image("red", "circle", seed=1)
    recompressed = Image.open(io.BytesIO(jpeg_bytes(red, quality=70)))
    # Same geometry, blue instead of red: a grey-level hash would call this identical.
    blue = Image.fromarray(np.asarray(red)[:, :, ::-1].copy())
    other = shape_image("red", "circle", seed=2)
    hashes = [dhash(i) for i in (red, recompressed, blue, other, red)]

    assert find_duplicates(hashes, max_distance=4) == [None, 0, None, None, 0]
    assert find_duplicates(hashes, max_distance=-1) == [None] * 5  # -1 turns it off


def test_hash_ignores_the_resize_and_sees_small_moves() -> None:
    image = shape_image("green", "square", seed=5, canvas=(256, 192))
    shifted = Image.fromarray(np.roll(np.asarray(image), 40, axis=1))
    hashes = [dhash(image), dhash(image.resize((128, 96), Image.Resampling.BICUBIC)), dhash(shifted)]
    assert find_duplicates(hashes, max_distance=4) == [None, 0, None]


def test_duplicates_are_skipped_with_scores_copied(shapes_service: VisionProcess) -> None:
    shapes_service.write_policy("red-circles.yaml", RED_CIRCLE_POLICY)
    red = shape_image("red", "circle", seed=700)
    a = jpeg_bytes(red, quality=92)
    a_again = jpeg_bytes(red, quality=70)  # different bytes, same picture
    b = shape_jpeg("blue", "square", seed=701)
    frames = [a, a_again, b, a, b]

    result = score(shapes_service.url, frames, [0, 100, 200, 300, 400], policy="red-circles")

    assert result.duplicates_skipped == 3
    assert [f.duplicate_of for f in result.frames] == [None, 0, None, 0, 2]
    assert sum(result.batch_sizes) >= 2  # the two distinct frames went to the model
    for frame in result.frames:
        if frame.duplicate_of is not None:
            source = result.frames[frame.duplicate_of]
            assert frame.scores == source.scores and frame.best_prompts == source.best_prompts
    assert [f.timestamp_ms for f in result.frames] == [0, 100, 200, 300, 400]
    assert [f.scores["red_circle"] >= 0.5 for f in result.frames] == [True, True, False, True, False]
