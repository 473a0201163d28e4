"""Where the vision service's CLIP weights come from, checked before anything is served.

Order (the first one configured wins):

1. ``MODGATE_VISION_CHECKPOINT``: a weights file for ``MODGATE_VISION_ARCH``, or a directory in
   open_clip's ``local-dir`` layout (``open_clip_config.json`` + weights, optionally
   ``SHA256SUMS``).
2. ``MODGATE_VISION_MODEL_TAG``: a BentoML model-store entry written by
   ``python -m services.vision.import_model`` (same directory layout; file hashes in its metadata).
3. ``MODGATE_VISION_PRETRAINED``: an open_clip hub tag. Downloads, so it works only online.

With none of them the service refuses to start unless ``MODGATE_VISION_ALLOW_UNCALIBRATED`` is
set, and then it serves random weights that are marked ``calibrated=false`` everywhere.

:func:`resolve_source` is cheap (stat + sha256, no torch) so it can run before the server starts;
:func:`load_clip` builds the model from what it resolved.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from modgate.wire import ModelInfo
from services.common import sha256_file, verify_pins, verify_sha256

from .config import VisionSettings

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

SourceKind = Literal["checkpoint", "checkpoint-dir", "store", "hub", "random"]
WEIGHT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors")
SUMS_FILE = "SHA256SUMS"
CONFIG_FILE = "open_clip_config.json"
RANDOM_SEED = 0
SUPPORTED_RESIZE_MODES = ("shortest", "squash")

HOW_TO_PROVIDE_WEIGHTS = (
    "Provide weights with one of: "
    "MODGATE_VISION_CHECKPOINT=/path/to/weights.pt (a file for MODGATE_VISION_ARCH, or an open_clip "
    "local-dir folder); "
    "MODGATE_VISION_MODEL_TAG=<tag> (import first: python -m services.vision.import_model "
    "--checkpoint weights.pt --arch ViT-B-32 --tag modgate-vision:v1); "
    "MODGATE_VISION_PRETRAINED=<open_clip tag, e.g. laion2b_s34b_b79k> (downloads: online only). "
    "For plumbing tests without weights set MODGATE_VISION_ALLOW_UNCALIBRATED=true: the service then "
    "serves random weights and every response says calibrated=false."
)


class ModelSourceError(RuntimeError):
    """The configured weights cannot be used; the message names the file/tag and the fix."""


@dataclass(frozen=True)
class ModelSource:
    kind: SourceKind
    open_clip_name: str  # what open_clip.create_model / get_tokenizer get
    display_name: str  # ModelInfo.name
    version: str  # ModelInfo.version: weights sha256 prefix, hub tag, or "random-init"
    weights: Path | None = None  # the weights file for kind == "checkpoint"
    pretrained: str | None = None  # hub tag for kind == "hub"
    origin: str = ""  # human-readable: where the weights came from

    @property
    def calibrated(self) -> bool:
        return self.kind != "random"


@dataclass(frozen=True)
class Preprocess:
    """How frames must look before the image tower: square side, normalisation, resize rule."""

    size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    interpolation: Literal["bicubic", "bilinear"] = "bicubic"
    resize_mode: Literal["shortest", "squash"] = "shortest"

    def to_dict(self) -> dict[str, Any]:
        return {
            "size": self.size,
            "mean": list(self.mean),
            "std": list(self.std),
            "interpolation": self.interpolation,
            "resize_mode": self.resize_mode,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Preprocess:
        return cls(
            size=int(data["size"]),
            mean=tuple(float(v) for v in data["mean"]),  # type: ignore[arg-type]
            std=tuple(float(v) for v in data["std"]),  # type: ignore[arg-type]
            interpolation=data.get("interpolation", "bicubic"),
            resize_mode=data.get("resize_mode", "shortest"),
        )


@dataclass
class LoadedClip:
    model: Any  # open_clip CLIP / CustomTextCLIP, eval mode, on `device`
    tokenizer: Any
    preprocess: Preprocess
    logit_scale: float
    embed_dim: int
    device: torch.device
    source: ModelSource


# --- pins -----------------------------------------------------------------------------------

PIN_REMEDY = "the file is corrupt or not the one that was pinned; re-copy it or update the pin"


def _read_sums(path: Path) -> dict[str, str]:
    """`sha256sum` format: '<hex>  <filename>' per line."""
    sums: dict[str, str] = {}
    for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split(maxsplit=1)
        if len(parts) != 2 or len(parts[0]) != 64:
            raise ModelSourceError(f"{path}:{line_no} is not a '<sha256>  <file>' line: {line!r}")
        sums[parts[1].strip().lstrip("*")] = parts[0].lower()
    return sums


def verify_pinned(path: Path, expected: str, *, what: str) -> str:
    """The sha256 of `path` if it is `expected`; else ModelSourceError naming `what` (the setting)."""
    return verify_sha256(path, expected, what=f"{what}: file", remedy=PIN_REMEDY, error=ModelSourceError)


# --- architecture -----------------------------------------------------------------------------


def register_arch(arch: str) -> str:
    """Return the open_clip model name for `arch`, registering a model-config JSON if given one."""
    import open_clip

    path = Path(arch)
    if arch.endswith(".json") or path.is_file():
        if not path.is_file():
            raise ModelSourceError(f"MODGATE_VISION_ARCH: model config file {path} does not exist")
        try:
            cfg = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ModelSourceError(f"MODGATE_VISION_ARCH: {path} is not readable JSON: {exc}") from None
        missing = [key for key in ("embed_dim", "vision_cfg", "text_cfg") if key not in cfg]
        if missing:
            raise ModelSourceError(
                f"MODGATE_VISION_ARCH: {path} is not an open_clip model config (missing {missing}); "
                "use the format of open_clip/model_configs/*.json"
            )
        open_clip.add_model_config(path.resolve())
        return path.stem
    if open_clip.get_model_config(arch) is None:
        raise ModelSourceError(
            f"MODGATE_VISION_ARCH: unknown open_clip architecture {arch!r}; use a name from "
            "open_clip.list_models() (e.g. ViT-B-32) or the path of a model-config JSON"
        )
    return arch


def _find_weights(directory: Path) -> Path:
    found = sorted(p for p in directory.iterdir() if p.suffix in WEIGHT_SUFFIXES and p.is_file())
    if not found:
        raise ModelSourceError(
            f"{directory} holds no weights file ({', '.join(WEIGHT_SUFFIXES)}) next to {CONFIG_FILE}"
        )
    return found[0]


def _dir_source(directory: Path, *, kind: SourceKind, expected: dict[str, str], name: str) -> ModelSource:
    what = "MODGATE_VISION_MODEL_TAG" if kind == "store" else "MODGATE_VISION_CHECKPOINT"
    config = directory / CONFIG_FILE
    if not config.is_file():
        raise ModelSourceError(
            f"{what}: {directory} has no {CONFIG_FILE}; a checkpoint folder needs open_clip's "
            "local-dir layout, or point MODGATE_VISION_CHECKPOINT at the weights file itself"
        )
    weights = _find_weights(directory)
    sums_path = directory / SUMS_FILE
    sums = dict(expected)
    if sums_path.is_file():
        for file, digest in _read_sums(sums_path).items():
            if sums.setdefault(file, digest) != digest:
                raise ModelSourceError(f"{what}: {sums_path} and the store metadata disagree on {file}")
    if sums:
        verify_pins(directory, sums, what=f"{what}: file", remedy=PIN_REMEDY, error=ModelSourceError)
        weights_sha = sums.get(weights.name) or sha256_file(weights)
    else:
        weights_sha = sha256_file(weights)
        log.warning(
            "%s: %s has no %s; weights not pinned (sha256 %s)", what, directory, SUMS_FILE, weights_sha
        )
    return ModelSource(
        kind=kind,
        open_clip_name=f"local-dir:{directory.resolve()}",
        display_name=name,
        version=weights_sha[:12],
        origin=f"{directory} ({weights.name} sha256 {weights_sha[:12]})",
    )


def _checkpoint_source(settings: VisionSettings, checkpoint: Path) -> ModelSource:
    if checkpoint.is_dir():
        return _dir_source(checkpoint, kind="checkpoint-dir", expected={}, name=checkpoint.name)
    if not checkpoint.is_file():
        raise ModelSourceError(f"MODGATE_VISION_CHECKPOINT: file {checkpoint} does not exist")
    name = register_arch(settings.arch)
    sidecar = checkpoint.with_name(checkpoint.name + ".sha256")
    expected = settings.checkpoint_sha256
    if expected is None and sidecar.is_file():
        expected = sidecar.read_text(encoding="utf-8").split()[0]
    if expected is not None:
        digest = verify_pinned(checkpoint, expected, what="MODGATE_VISION_CHECKPOINT")
    else:
        digest = sha256_file(checkpoint)
        log.warning(
            "MODGATE_VISION_CHECKPOINT %s is not pinned (sha256 %s); set MODGATE_VISION_CHECKPOINT_SHA256 "
            "or write a %s sidecar",
            checkpoint,
            digest,
            sidecar.name,
        )
    return ModelSource(
        kind="checkpoint",
        open_clip_name=name,
        display_name=name,
        version=digest[:12],
        weights=checkpoint.resolve(),
        origin=f"{checkpoint} (sha256 {digest[:12]})",
    )


def _store_source(tag: str) -> ModelSource:
    import bentoml
    from bentoml.exceptions import BentoMLException

    try:
        model = bentoml.models.get(tag)
    except BentoMLException as exc:
        raise ModelSourceError(
            f"MODGATE_VISION_MODEL_TAG: {tag!r} is not in the BentoML model store ({exc}). "
            "Import it with: python -m services.vision.import_model --checkpoint weights.pt "
            f"--arch ViT-B-32 --tag {tag}"
        ) from None
    metadata = model.info.metadata
    expected = metadata.get("sha256")
    if not isinstance(expected, dict) or not expected:
        raise ModelSourceError(
            f"MODGATE_VISION_MODEL_TAG: store entry {model.tag} has no sha256 metadata; "
            "re-import it with python -m services.vision.import_model"
        )
    source = _dir_source(
        Path(model.path), kind="store", expected=expected, name=str(metadata.get("arch", model.tag.name))
    )
    return ModelSource(
        kind="store",
        open_clip_name=source.open_clip_name,
        display_name=source.display_name,
        version=source.version,
        origin=f"BentoML store {model.tag} at {model.path}",
    )


def _hub_source(settings: VisionSettings, tag: str) -> ModelSource:
    import open_clip

    name = register_arch(settings.arch)
    known = open_clip.list_pretrained_tags_by_model(name)
    if tag not in known:
        raise ModelSourceError(
            f"MODGATE_VISION_PRETRAINED: {tag!r} is not an open_clip pretrained tag for {name}; "
            f"known tags: {', '.join(known) or 'none'}"
        )
    origin = f"open_clip hub {name}/{tag}"
    return ModelSource(
        kind="hub", open_clip_name=name, display_name=name, version=tag, pretrained=tag, origin=origin
    )


def resolve_source(settings: VisionSettings) -> ModelSource:
    """Pick and check the weights source. Raises ModelSourceError with the fix in the message."""
    if settings.checkpoint is not None:
        return _checkpoint_source(settings, settings.checkpoint)
    if settings.model_tag:
        return _store_source(settings.model_tag)
    if settings.pretrained:
        return _hub_source(settings, settings.pretrained)
    if not settings.allow_uncalibrated:
        raise ModelSourceError(f"the vision service has no CLIP weights configured. {HOW_TO_PROVIDE_WEIGHTS}")
    name = register_arch(settings.arch)
    log.warning(
        "vision: serving RANDOM %s weights (MODGATE_VISION_ALLOW_UNCALIBRATED=true); every response "
        "says calibrated=false",
        name,
    )
    return ModelSource(
        kind="random", open_clip_name=name, display_name=name, version="random-init", origin="random init"
    )


# --- loading ----------------------------------------------------------------------------------


def pick_device(requested: str) -> torch.device:
    import torch

    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested == "cuda" and not torch.cuda.is_available():
        raise ModelSourceError("MODGATE_DEVICE=cuda but torch sees no CUDA device; use cpu or auto")
    return torch.device(requested)


def _preprocess_of(model: Any) -> Preprocess:
    import open_clip

    cfg = open_clip.get_model_preprocess_cfg(model)
    size = cfg.get("size", 224)
    if isinstance(size, (tuple, list)):
        if len(set(size)) != 1:
            raise ModelSourceError(f"non-square model input {tuple(size)} is not supported")
        size = size[0]
    interpolation = cfg.get("interpolation", "bicubic")
    resize_mode = cfg.get("resize_mode", "shortest")
    if resize_mode not in SUPPORTED_RESIZE_MODES:
        raise ModelSourceError(f"model resize_mode {resize_mode!r} is unsupported ({SUPPORTED_RESIZE_MODES})")
    mean = tuple(cfg.get("mean", open_clip.OPENAI_DATASET_MEAN))
    std = tuple(cfg.get("std", open_clip.OPENAI_DATASET_STD))
    return Preprocess(
        size=int(size),
        mean=mean,  # type: ignore[arg-type]
        std=std,  # type: ignore[arg-type]
        interpolation="bilinear" if interpolation == "bilinear" else "bicubic",
        resize_mode=resize_mode,
    )


def load_clip(source: ModelSource, device: torch.device) -> LoadedClip:
    """Build the model `source` describes. Weights files are loaded with weights_only=True."""
    import open_clip
    import torch

    kwargs: dict[str, Any] = {"device": device, "pretrained_text": False, "pretrained_image": False}
    try:
        if source.kind == "checkpoint":
            model = open_clip.create_model(source.open_clip_name, pretrained=str(source.weights), **kwargs)
        elif source.kind == "hub":
            model = open_clip.create_model(
                source.open_clip_name, pretrained=source.pretrained, require_pretrained=True, **kwargs
            )
        elif source.kind == "random":
            torch.manual_seed(RANDOM_SEED)
            model = open_clip.create_model(source.open_clip_name, **kwargs)
        else:
            model = open_clip.create_model(source.open_clip_name, **kwargs)
    except Exception as exc:
        hint = (
            " Downloading hub weights needs internet access; offline, import weights into the store "
            "or set MODGATE_VISION_CHECKPOINT."
            if source.kind == "hub"
            else " Check that MODGATE_VISION_ARCH matches the checkpoint."
        )
        raise ModelSourceError(f"could not load CLIP weights from {source.origin}: {exc}.{hint}") from exc
    model.eval()
    tokenizer = open_clip.get_tokenizer(source.open_clip_name)
    with torch.no_grad():
        logit_scale = float(model.logit_scale.exp().clamp(max=100.0))
    embed_dim = int(model.text_projection.shape[1]) if hasattr(model, "text_projection") else 0
    return LoadedClip(
        model=model,
        tokenizer=tokenizer,
        preprocess=_preprocess_of(model),
        logit_scale=logit_scale,
        embed_dim=embed_dim,
        device=device,
        source=source,
    )


def model_info(source: ModelSource, *, variant: str, device: torch.device | str) -> ModelInfo:
    import open_clip

    return ModelInfo(
        name=source.display_name,
        version=source.version,
        engine=f"open_clip-{open_clip.__version__}/{device}",
        variant=variant,  # type: ignore[arg-type]
        calibrated=source.calibrated,
    )
