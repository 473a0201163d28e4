"""Put CLIP weights into the BentoML model store for the vision service.

    python -m services.vision.import_model --checkpoint weights.pt --arch ViT-B-32 --tag modgate-vision:v1

Then serve them with ``MODGATE_VISION_MODEL_TAG=modgate-vision:v1``. The store lives under
``$BENTOML_HOME/models`` (default ``~/bentoml``). ``--arch`` takes an open_clip architecture
name or the path of an open_clip model-config JSON. The weights are test-loaded into the
architecture first and stored with their sha256, which the service checks at every start.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from .models import ModelSourceError, import_to_store


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
