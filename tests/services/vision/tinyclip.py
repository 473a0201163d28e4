"""A tiny OpenCLIP that really knows coloured shapes, trained in well under a minute on CPU.

Random weights hide channel-order, normalisation, tokenisation and batching bugs (every answer
is equally wrong). This model is trained through open_clip's own eval transform and tokenizer,
so when the service, with its own decode/resize/normalise path, finds the red circles, that path
agrees with open_clip's.
"""

from __future__ import annotations

import io
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

COLORS: dict[str, tuple[int, int, int]] = {
    "red": (215, 35, 35),
    "green": (35, 160, 55),
    "blue": (35, 65, 215),
    "yellow": (225, 195, 30),
}
SHAPES = ("circle", "square", "triangle")
TEMPLATES = ("a {color} {shape}", "a picture of a {color} {shape}")
CLASSES = [(c, s) for c in COLORS for s in SHAPES]
ARCH_NAME = "modgate-tiny-clip"

# open_clip model config (same format as open_clip/model_configs/*.json). The image tower is
# open_clip's ModifiedResNet at 32 px and width 16: convolutions pick up shape in ~150 steps,
# where an equally cheap ViT needed ~4x longer. Its BatchNorm layers also make a missing
# model.eval() show (scores would depend on what else is in the batch).
TINY_CFG = {
    "embed_dim": 64,
    "vision_cfg": {"image_size": 32, "layers": [1, 1, 1, 1], "width": 16},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}


def caption(color: str, shape: str, template: int = 0) -> str:
    return TEMPLATES[template].format(color=color, shape=shape)


def draw_shape(
    color: str, shape: str, rng: np.random.Generator, canvas: tuple[int, int] = (96, 96)
) -> Image.Image:
    """One shape on a noisy light background, inside the centred square a centre crop keeps."""
    width, height = canvas
    side = min(width, height)
    x0, y0 = (width - side) // 2, (height - side) // 2
    background = rng.integers(185, 250)
    pixels = np.clip(rng.normal(background, 6.0, size=(height, width, 3)), 0, 255).astype(np.uint8)
    image = Image.fromarray(pixels, "RGB")
    fill = tuple(int(np.clip(v + rng.integers(-25, 26), 0, 255)) for v in COLORS[color])
    size = int(side * rng.uniform(0.45, 0.8))
    left = x0 + int(rng.integers(0, side - size + 1))
    top = y0 + int(rng.integers(0, side - size + 1))
    box = (left, top, left + size, top + size)
    pen = ImageDraw.Draw(image)
    if shape == "circle":
        pen.ellipse(box, fill=fill)
    elif shape == "square":
        pen.rectangle(box, fill=fill)
    else:
        pen.polygon([(left + size / 2, top), (left, top + size), (left + size, top + size)], fill=fill)
    return image


@dataclass(frozen=True)
class TinyClip:
    config_path: Path  # MODGATE_VISION_ARCH
    checkpoint_path: Path  # MODGATE_VISION_CHECKPOINT
    accuracy: float  # held-out zero-shot accuracy over the 12 classes, template 0
    seconds: float
    steps: int


def _dataset(per_class: int, rng: np.random.Generator, transform) -> tuple:  # type: ignore[no-untyped-def]
    import torch

    images, labels = [], []
    for label, (color, shape) in enumerate(CLASSES):
        for _ in range(per_class):
            canvas = (96, 96) if rng.random() < 0.5 else (128, 96)
            images.append(transform(draw_shape(color, shape, rng, canvas)))
            labels.append(label)
    return torch.stack(images), torch.tensor(labels)


def train_tiny_clip(
    out_dir: Path, *, budget_s: float = 300.0, min_confidence: float = 0.6, seed: int = 0
) -> TinyClip:
    """Train until every held-out image is classified right with a softmax share of at least
    min_confidence among all class captions (or the budget runs out); save config + weights.

    Argmax accuracy alone is reached early (~200 steps), while the semantic tests check sigmoid
    scores against thresholds (true class > 0.5 > every other class, non-matches < 0.1): a
    model stopped at the first 99% left "blue circle" at 0.87 for a blue square."""
    import open_clip
    import torch
    import torch.nn.functional as F

    started = time.monotonic()
    out_dir.mkdir(parents=True, exist_ok=True)
    config_path = out_dir / f"{ARCH_NAME}.json"
    config_path.write_text(json.dumps(TINY_CFG, indent=2), encoding="utf-8")
    open_clip.add_model_config(config_path)

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = open_clip.create_model(ARCH_NAME, pretrained_text=False)
    tokenizer = open_clip.get_tokenizer(ARCH_NAME)
    # open_clip's own eval transform: the reference the service's decode path must agree with.
    transform = open_clip.image_transform(TINY_CFG["vision_cfg"]["image_size"], is_train=False)
    train_x, train_y = _dataset(160, rng, transform)
    test_x, test_y = _dataset(20, rng, transform)
    tokens = tokenizer([caption(c, s, t) for t in range(len(TEMPLATES)) for c, s in CLASSES])
    n_classes = len(CLASSES)

    # The 49408-token embedding table would cost most of each step (dense grad + AdamW state) for
    # the ten words used here; frozen random rows are distinct enough for the towers to learn on.
    model.token_embedding.weight.requires_grad_(False)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=2e-3, weight_decay=0.01)
    accuracy, step = 0.0, 0
    while True:
        model.train()
        idx = torch.randint(0, len(train_x), (64,))
        image = model.encode_image(train_x[idx], normalize=True)
        text = model.encode_text(tokens, normalize=True).view(len(TEMPLATES), n_classes, -1)
        scale = model.logit_scale.exp()
        loss = sum(F.cross_entropy(scale * image @ text[t].T, train_y[idx]) for t in range(len(TEMPLATES)))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, float(np.log(100.0)))
        step += 1
        if step % 25 == 0:
            model.eval()
            with torch.no_grad():
                image = model.encode_image(test_x, normalize=True)
                text = model.encode_text(tokens, normalize=True).view(len(TEMPLATES), n_classes, -1)
                scale = model.logit_scale.exp()
                logits = [scale * image @ text[t].T for t in range(len(TEMPLATES))]
                hits = [lg.argmax(1) == test_y for lg in logits]
                accuracy = min(float(h.float().mean()) for h in hits)
                confidence = min(float(lg.softmax(1).gather(1, test_y[:, None]).min()) for lg in logits)
            if (accuracy >= 0.99 and confidence >= min_confidence) or time.monotonic() - started > budget_s:
                break
    checkpoint_path = out_dir / f"{ARCH_NAME}.pt"
    model.eval()
    torch.save(model.state_dict(), checkpoint_path)
    return TinyClip(config_path, checkpoint_path, accuracy, time.monotonic() - started, step)


if __name__ == "__main__":  # manual check: python -m tests.services.vision.tinyclip /tmp/tiny
    import sys

    import torch

    torch.set_num_threads(1)
    print(train_tiny_clip(Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/tinyclip")))


# --- frames as the gateway would send them -------------------------------------------------------


def shape_image(color: str, shape: str, seed: int, canvas: tuple[int, int] = (128, 96)) -> Image.Image:
    return draw_shape(color, shape, np.random.default_rng(seed), canvas)


def jpeg_bytes(image: Image.Image, quality: int = 92) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def shape_jpeg(color: str, shape: str, seed: int, canvas: tuple[int, int] = (128, 96)) -> bytes:
    return jpeg_bytes(shape_image(color, shape, seed, canvas))


def shape_raw(color: str, shape: str, seed: int, size: int) -> bytes:
    """uint8 RGB at model resolution, row-major: what frame_format=raw carries."""
    image = shape_image(color, shape, seed, (96, 96)).resize((size, size), Image.Resampling.BICUBIC)
    return np.asarray(image, dtype=np.uint8).tobytes()
