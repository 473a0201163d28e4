"""The service, over HTTP with a trained tiny CLIP, flags what the policy's prompts describe.

A channel-order, normalisation, tokenisation or row-mixing bug anywhere between the multipart
body and the scores makes these fail: red and blue swap, shapes blur, or scores land on the
wrong frame.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

from modgate.policy import load_policy
from modgate.wire import PolicyRef, VisionInfo, VisionResult
from tests.services.vision.conftest import VisionProcess
from tests.services.vision.tinyclip import TinyClip, shape_jpeg, shape_raw
from tests.services.vision.vision_http import score

RED_CIRCLE_POLICY = """
name: red-circles
version: "2026.11.25-1"
neutral:
  vision_prompts:
    - a blue circle
    - a green circle
    - a yellow circle
    - a red square
    - a red triangle
    - a blue square
    - a green triangle
    - a yellow square
  text_exemplars: [nothing to see here]
categories:
  red_circle:
    description: red circles are not welcome
    thresholds: {review: 0.5, block: 0.9}
    vision:
      prompts: [a red circle, a picture of a red circle]
      threshold: 0.25
      temperature: 0.05
profanity: {enabled: false}
"""

# Frame i is shown at 40 + 400 * i ms; red circles at 440, 2040 and 3640 ms.
SEQUENCE = [
    ("blue", "square"),
    ("red", "circle"),
    ("green", "triangle"),
    ("red", "square"),
    ("blue", "circle"),
    ("red", "circle"),
    ("yellow", "circle"),
    ("red", "triangle"),
    ("green", "circle"),
    ("red", "circle"),
]
TIMESTAMPS = [40 + 400 * i for i in range(len(SEQUENCE))]
RED_CIRCLE_TIMESTAMPS = [440, 2040, 3640]


def _flagged(result: VisionResult, category: str, review: float) -> list[int]:
    return [f.timestamp_ms for f in result.frames if f.scores[category] >= review]


def test_red_circle_policy_flags_exactly_the_red_circle_frames(
    shapes_service: VisionProcess, tiny_clip: TinyClip
) -> None:
    path = shapes_service.write_policy("red-circles.yaml", RED_CIRCLE_POLICY)
    policy = load_policy(path)
    review = policy.categories["red_circle"].thresholds.review
    frames = [shape_jpeg(color, shape, seed=100 + i) for i, (color, shape) in enumerate(SEQUENCE)]

    result = score(shapes_service.url, frames, TIMESTAMPS, policy="red-circles")

    assert _flagged(result, "red_circle", review) == RED_CIRCLE_TIMESTAMPS
    assert [f.index for f in result.frames] == list(range(len(SEQUENCE)))
    assert [f.timestamp_ms for f in result.frames] == TIMESTAMPS
    prompts = policy.categories["red_circle"].vision.prompts  # type: ignore[union-attr]
    assert all(f.best_prompts["red_circle"] in prompts for f in result.frames)
    # Non-red-circle frames are not borderline: the model separates them clearly.
    others = [f.scores["red_circle"] for f in result.frames if f.timestamp_ms not in RED_CIRCLE_TIMESTAMPS]
    assert max(others) < 0.1
    assert result.duplicates_skipped == 0 and all(f.duplicate_of is None for f in result.frames)
    assert result.policy == PolicyRef(name=policy.name, version=policy.version, digest=policy.digest)
    checkpoint_sha = hashlib.sha256(tiny_clip.checkpoint_path.read_bytes()).hexdigest()
    assert result.model.calibrated is True
    assert (result.model.name, result.model.version) == ("modgate-tiny-clip", checkpoint_sha[:12])
    assert sum(result.batch_sizes) >= len(SEQUENCE)


def test_raw_frames_at_model_resolution_are_scored_the_same_way(shapes_service: VisionProcess) -> None:
    shapes_service.write_policy("red-circles.yaml", RED_CIRCLE_POLICY)
    info = VisionInfo.model_validate_json(
        httpx.post(f"{shapes_service.url}/info", json={}, timeout=60).content
    )
    size = info.input_size
    frames = [shape_raw(color, shape, seed=200 + i, size=size) for i, (color, shape) in enumerate(SEQUENCE)]

    result = score(
        shapes_service.url, frames, TIMESTAMPS, policy="red-circles", raw=True, raw_shape=[size, size, 3]
    )

    assert _flagged(result, "red_circle", 0.5) == RED_CIRCLE_TIMESTAMPS


TWO_CATEGORY_POLICY = """
name: shapes-linear
version: "7"
neutral:
  vision_prompts: [a green circle, a yellow square, a red triangle, a blue triangle, a green square]
  text_exemplars: [hello]
categories:
  red_circle:
    description: red circles
    vision: {prompts: [a red circle, a picture of a red circle], threshold: 0.0, temperature: 1.0}
  blue_square:
    description: blue squares
    vision: {prompts: [a blue square], threshold: 0.0, temperature: 1.0}
profanity: {enabled: false}
"""


def _reference_shares(
    tiny_clip: TinyClip, images: list[Image.Image], policy_path: Path
) -> dict[str, np.ndarray]:
    """Each category's softmax share against the neutral prompts, via open_clip's own pipeline."""
    import open_clip
    import torch

    open_clip.add_model_config(tiny_clip.config_path)
    name = tiny_clip.config_path.stem
    model, _, preprocess = open_clip.create_model_and_transforms(
        name, pretrained=str(tiny_clip.checkpoint_path)
    )
    model.eval()
    tokenizer = open_clip.get_tokenizer(name)
    policy = load_policy(policy_path)
    with torch.no_grad():
        image = model.encode_image(torch.stack([preprocess(i) for i in images]), normalize=True)
        neutral = model.encode_text(tokenizer(policy.neutral.vision_prompts), normalize=True)
        scale = model.logit_scale.exp()
        shares = {}
        for category, rule in policy.vision_categories().items():
            ensemble = model.encode_text(tokenizer(rule.prompts), normalize=True).mean(0)
            ensemble = ensemble / ensemble.norm()
            logits = scale * torch.cat([(image @ ensemble)[:, None], image @ neutral.T], dim=1)
            shares[category] = logits.softmax(dim=1)[:, 0].numpy()
    return shares


def test_scores_match_open_clip_reference_pipeline(
    shapes_service: VisionProcess, tiny_clip: TinyClip
) -> None:
    """With temperature 1 and threshold 0, score = sigmoid(share): the share is recoverable, and
    must equal what open_clip's transform + tokenizer + model give for the same JPEG bytes."""
    path = shapes_service.write_policy("shapes-linear.yaml", TWO_CATEGORY_POLICY)
    specs = [
        ("red", "circle"),
        ("blue", "square"),
        ("green", "triangle"),
        ("blue", "circle"),
        ("red", "square"),
    ]
    jpegs = [shape_jpeg(c, s, seed=300 + i) for i, (c, s) in enumerate(specs)]

    result = score(shapes_service.url, jpegs, list(range(len(specs))), policy="shapes-linear")

    images = [Image.open(io.BytesIO(j)) for j in jpegs]
    reference = _reference_shares(tiny_clip, images, path)
    for category, expected in reference.items():
        served = np.array([f.scores[category] for f in result.frames])
        recovered = np.log(served / (1.0 - served))  # logit(sigmoid(share)) = share
        np.testing.assert_allclose(recovered, expected, atol=2e-3, err_msg=category)
    # and the reference itself tells the shapes apart, so the agreement above is not vacuous
    # (a red square shares "red" with a red circle, a blue circle "blue" with a blue square: the
    # tiny model, trained for seconds until its own captions separate the classes, need only rank
    # the right image first here, against the neutral prompts, not push every other under 0.5)
    for category, index in (("red_circle", 0), ("blue_square", 1)):
        shares = reference[category]
        assert shares[index] > 0.5 and shares[index] > max(np.delete(shares, index)), (category, shares)


def test_policy_change_is_picked_up_and_reported(shapes_service: VisionProcess) -> None:
    v1 = RED_CIRCLE_POLICY.replace("name: red-circles", "name: reloading").replace('"2026.11.25-1"', '"1"')
    shapes_service.write_policy("reloading.yaml", v1)
    frames = [shape_jpeg(c, s, seed=400 + i) for i, (c, s) in enumerate(SEQUENCE)]
    first = score(shapes_service.url, frames, TIMESTAMPS, policy="reloading", policy_version="1")
    assert first.policy.version == "1"
    assert _flagged(first, "red_circle", 0.5) == RED_CIRCLE_TIMESTAMPS

    # Version 2 points the same category at blue circles (and stops calling them neutral).
    v2 = (
        v1.replace('version: "1"', 'version: "2"')
        .replace("    - a blue circle\n", "    - a red circle\n")
        .replace("prompts: [a red circle, a picture of a red circle]", "prompts: [a blue circle]")
    )
    path = shapes_service.write_policy("reloading.yaml", v2)
    second = score(shapes_service.url, frames, TIMESTAMPS, policy="reloading", policy_version="2")

    policy = load_policy(path)
    assert second.policy == PolicyRef(name="reloading", version="2", digest=policy.digest)
    assert _flagged(second, "red_circle", 0.5) == [TIMESTAMPS[4]]  # the one blue circle
