"""Put CLIP weights into the BentoML model store for the vision service.

    python -m services.vision.import_model --checkpoint weights.pt --arch ViT-B-32 --tag modgate-vision:v1

Then serve them with ``MODGATE_VISION_MODEL_TAG=modgate-vision:v1``. The store lives under
``$BENTOML_HOME/models`` (default ``~/bentoml``). ``--arch`` takes an open_clip architecture
name or the path of an open_clip model-config JSON. The weights are test-loaded into the
architecture first and stored with their sha256, which the service checks at every start.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
from pathlib import Path

from services.common import sha256_file

from .models import (
    CONFIG_FILE,
    SUMS_FILE,
    WEIGHT_SUFFIXES,
    ModelSource,
    ModelSourceError,
    load_clip,
    register_arch,
    verify_pinned,
)


def import_to_store(checkpoint: Path, arch: str, tag: str) -> str:
    """Copy a weights file into the BentoML model store in open_clip's local-dir layout.

    The weights are loaded into `arch` first (strict), so a mismatched checkpoint is rejected here
    rather than when the service starts. Returns the stored tag.
    """
    import bentoml
    import open_clip
    import torch

    if not checkpoint.is_file():
        raise ModelSourceError(f"--checkpoint: file {checkpoint} does not exist")
    if checkpoint.suffix not in WEIGHT_SUFFIXES:
        raise ModelSourceError(f"--checkpoint: {checkpoint} is not a weights file {WEIGHT_SUFFIXES}")
    name = register_arch(arch)
    digest = sha256_file(checkpoint)
    source = ModelSource(
        kind="checkpoint", open_clip_name=name, display_name=name, version=digest[:12], weights=checkpoint
    )
    clip = load_clip(source, torch.device("cpu"))
    model_cfg = open_clip.get_model_config(name)
    # The names open_clip's local-dir loader looks for first.
    if checkpoint.suffix == ".safetensors":
        stored_name = "open_clip_model.safetensors"
    else:
        stored_name = "open_clip_pytorch_model.bin"
    metadata = {
        "arch": name,
        "sha256": {stored_name: digest},
        "source_file": str(checkpoint.resolve()),
        "open_clip_version": open_clip.__version__,
    }
    labels = {"modality": "vision", "engine": "open_clip"}
    with bentoml.models.create(tag, labels=labels, metadata=metadata) as entry:
        dest = Path(entry.path)
        shutil.copyfile(checkpoint, dest / stored_name)
        (dest / CONFIG_FILE).write_text(
            json.dumps({"model_cfg": model_cfg, "preprocess_cfg": clip.preprocess.to_dict()}, indent=2),
            encoding="utf-8",
        )
        (dest / SUMS_FILE).write_text(f"{digest}  {stored_name}\n", encoding="utf-8")
        verify_pinned(dest / stored_name, digest, what="import")
        stored_tag = str(entry.tag)
    return stored_tag


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m services.vision.import_model",
        description="Import CLIP weights into the BentoML store.",
    )
    parser.add_argument("--checkpoint", type=Path, required=True, help="weights (.pt/.pth/.bin/.safetensors)")
    parser.add_argument("--arch", default="ViT-B-32", help="open_clip architecture or model-config JSON path")
    parser.add_argument("--tag", default="modgate-vision", help="store tag, name[:version]")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Importing weights is an offline operation; keep BentoML's usage analytics out of it.
    os.environ.setdefault("BENTOML_DO_NOT_TRACK", "True")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    try:
        tag = import_to_store(args.checkpoint, args.arch, args.tag)
    except ModelSourceError as exc:
        print(f"import_model: {exc}", file=sys.stderr)
        return 2
    print(tag)
    print(
        f"serve it: MODGATE_VISION_MODEL_TAG={tag} bentoml serve services.vision.service:Vision",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
