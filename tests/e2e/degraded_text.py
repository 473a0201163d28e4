"""A deliberately worse copy of the text model, for a text canary that must be rolled back.

    from tests.e2e.degraded_text import degraded_text_model, canary_env
    model_dir = degraded_text_model(tmp_path / "degraded")          # all-MiniLM-L6-v2, 1 layer of 6
    model_dir = degraded_text_model(tmp_path / "worse", layers=None, noise=1.0)  # 6 noisy layers
    env = {**os.environ, **canary_env(model_dir), "MODGATE_VARIANT": "canary"}   # the text canary's

The copy keeps the tokenizer and pooling files (symlinks to services/text/models.package_model_dir())
and writes its own config.json with `layers` transformer layers instead of 6 (None: all 6):
transformers then loads only the first layers of the same weights, so the embeddings, and
every semantic score the text service derives from them, drift. `noise` > 0 also writes its
own weights, each tensor plus Gaussian noise of `noise` times that tensor's standard deviation
(its sha256, the model version the canary reports, then differs from stable's). The text
service loads it with MODGATE_TEXT_MODEL_PATH=<dir> and MODGATE_TEXT_VERIFY_CHECKSUMS=false
(canary_env).

How much worse (`python -m tests.e2e.degraded_text`, default policy,
scores of 3 violent, 3 harassing, 3 benign sentences; mean |change| over every category):
- layers=1 (the default): 0.06. Harassment flips on 2 of 9 sentences (0.00 -> 1.00 on one,
  0.98 -> 0.33 on another), violence 0.98 -> 0.75 on one but every violent sentence stays
  over the 0.5 review threshold; a benign one gains violence 0.09.
- layers=None, noise=1.0: 0.28. Violence 0.94/0.98/0.98 -> 0.42/0.07/0.31 (all under the
  review threshold), harassment 1.00/0.98 -> 0.38/0.43, benign ones gain up to 0.36.
- layers=None, noise=0.5: 0.14; layers=1, noise=0.5: 0.09.

Run as a script, it scores a few violent, harassing and benign sentences with the real model
and with the copy, in process through the text service's own pipeline, and prints both:

    python -m tests.e2e.degraded_text [--layers 1] [--noise 0.0]      # --layers 0: all 6
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

WEIGHTS = "model.safetensors"
SENTENCES = {
    "violent": [
        "I am going to find you and beat you until you stop breathing.",
        "Someone should put a bullet in that reporter's head.",
        "Tonight I'll burn their house down while they sleep.",
    ],
    "harassment": [
        "You are a worthless piece of trash and everyone hates you.",
        "Nobody would miss you if you disappeared, you ugly loser.",
        "Go back to the hole you crawled out of, idiot.",
    ],
    "benign": [
        "The farmers market opens at nine on Saturday mornings.",
        "I baked banana bread with my grandmother this weekend.",
        "Our team finished the quarterly report ahead of schedule.",
    ],
}


def canary_env(model_dir: Path) -> dict[str, str]:
    """The text service's environment for serving `model_dir` (no pinned checksums)."""
    return {"MODGATE_TEXT_MODEL_PATH": str(model_dir), "MODGATE_TEXT_VERIFY_CHECKSUMS": "false"}


def degraded_text_model(dest: Path, *, layers: int | None = 1, noise: float = 0.0, seed: int = 0) -> Path:
    """A worse all-MiniLM-L6-v2 in `dest` (created; must not exist or be empty): see the module doc."""
    from services.text.models import package_model_dir

    source = package_model_dir()
    dest.mkdir(parents=True, exist_ok=True)
    if any(dest.iterdir()):
        raise FileExistsError(f"{dest} is not empty: give degraded_text_model a new directory")
    for path in sorted(source.rglob("*")):
        target = dest / path.relative_to(source)
        if path.is_dir():
            target.mkdir(exist_ok=True)
        elif path.name not in ("config.json", WEIGHTS) or path.parent != source:
            target.symlink_to(path)
    config = json.loads((source / "config.json").read_text())
    if layers is not None:
        if not 1 <= layers <= int(config["num_hidden_layers"]):
            raise ValueError(f"layers must be 1..{config['num_hidden_layers']}, got {layers}")
        config["num_hidden_layers"] = layers
    (dest / "config.json").write_text(json.dumps(config, indent=2))
    if noise > 0:
        _noisy_weights(source / WEIGHTS, dest / WEIGHTS, noise, seed)
    else:
        (dest / WEIGHTS).symlink_to(source / WEIGHTS)
    return dest


def _noisy_weights(source: Path, target: Path, noise: float, seed: int) -> None:
    import torch
    from safetensors.torch import load_file, save_file

    generator = torch.Generator().manual_seed(seed)
    tensors = load_file(str(source))
    noisy = {}
    for name, tensor in tensors.items():
        if tensor.is_floating_point() and tensor.numel() > 1:
            scale = float(tensor.float().std()) * noise
            tensor = tensor + torch.randn(tensor.shape, generator=generator, dtype=tensor.dtype) * scale
        noisy[name] = tensor.contiguous()
    save_file(noisy, str(target), metadata={"format": "pt"})


def score_sentences(model_dir: Path | None, sentences: list[str]) -> list[dict[str, float]]:
    """The text service's scores (default policy) for each sentence, with the packaged model
    (None) or `model_dir`, through services/text's own encoder and pipeline, in this process."""
    from modgate.policy import load_policies
    from modgate.wire import TextItem
    from services.text.config import TextSettings
    from services.text.encoder import load_text_encoder
    from services.text.models import resolve_model
    from services.text.normalise import WordSegmenter
    from services.text.pipeline import TextModerator

    settings = TextSettings()
    if model_dir is None:
        resolved = resolve_model(source="package")
    else:
        resolved = resolve_model(source="path", model_path=model_dir, verify_checksums=False)
    encoder = load_text_encoder("minilm", minilm=resolved, usem=None, threads=2)
    moderator = TextModerator(
        max_chars=settings.max_chars,
        chunk_words=settings.chunk_words,
        evidence_min_score=settings.evidence_min_score,
        segmenter=WordSegmenter(encoder.vocabulary()),
    )
    bundle = moderator.build_policy(load_policies()["default"], encoder.encode)
    items = [TextItem(id=f"s{i}", text=text, source="caption") for i, text in enumerate(sentences)]
    return [dict(result.scores) for result in moderator.moderate(items, bundle, encoder.encode)]


def _compare(layers: int | None, noise: float) -> None:
    sentences = [s for group in SENTENCES.values() for s in group]
    groups = [g for g, group in SENTENCES.items() for _ in group]
    real = score_sentences(None, sentences)
    with tempfile.TemporaryDirectory() as scratch:
        degraded = score_sentences(
            degraded_text_model(Path(scratch) / "m", layers=layers, noise=noise), sentences
        )
    print(f"degraded: {layers or 'all'} layer(s), noise {noise:g}; scores real -> degraded (default policy)")
    watched = ("violence", "harassment")
    deltas = []
    for group, text, a, b in zip(groups, sentences, real, degraded, strict=True):
        cells = "  ".join(f"{c} {a.get(c, 0):.2f}->{b.get(c, 0):.2f}" for c in watched)
        top_a, top_b = max(a, key=a.get), max(b, key=b.get)  # type: ignore[arg-type]
        print(f"{group:<10} {cells}  top {top_a}->{top_b}  | {text}")
        deltas += [abs(b.get(c, 0) - a.get(c, 0)) for c in a]
    print(f"mean |score change| over every category: {sum(deltas) / len(deltas):.3f}, max {max(deltas):.3f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="score sentences with the real and a degraded text model")
    parser.add_argument("--layers", type=int, default=1, help="transformer layers kept (0: all 6)")
    parser.add_argument("--noise", type=float, default=0.0, help="weight noise, in standard deviations")
    args = parser.parse_args()
    os.environ.setdefault("MODGATE_HOME", tempfile.mkdtemp())
    _compare(args.layers or None, args.noise)
