"""Model resolution, the store import, preprocessing parity with open_clip, calibration, policy reloads."""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from modgate.policy import parse_policy
from services.common import PolicyStore, UnknownPolicyError, keep_policy, sha256_file
from services.vision.calibration import category_shares, score_frames
from services.vision.config import VisionSettings
from services.vision.frames import FrameError, decode_image, resize_to_model
from services.vision.import_model import import_to_store
from services.vision.models import ModelSourceError, Preprocess, resolve_source
from services.vision.prompts import build_prompt_bank
from tests.services.vision.conftest import REPO, service_env
from tests.services.vision.tinyclip import TINY_CFG, TinyClip, jpeg_bytes, shape_image


@pytest.fixture(autouse=True)
def _no_modgate_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """VisionSettings reads the environment; these tests say everything explicitly."""
    for key in list(os.environ):
        if key.startswith("MODGATE_"):
            monkeypatch.delenv(key)


# --- where weights come from --------------------------------------------------------------------


def test_no_weights_and_not_allowed_names_every_way_to_provide_them() -> None:
    with pytest.raises(ModelSourceError) as err:
        resolve_source(VisionSettings())
    message = str(err.value)
    for key in ("MODGATE_VISION_CHECKPOINT", "MODGATE_VISION_MODEL_TAG", "MODGATE_VISION_PRETRAINED"):
        assert key in message
    assert "services.vision.import_model" in message and "MODGATE_VISION_ALLOW_UNCALIBRATED" in message


def test_missing_checkpoint_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope.pt"
    with pytest.raises(ModelSourceError, match=f"file {missing} does not exist"):
        resolve_source(VisionSettings(checkpoint=missing))


def test_checkpoint_hash_pins(tiny_clip: TinyClip, tmp_path: Path) -> None:
    digest = sha256_file(tiny_clip.checkpoint_path)
    base = {"arch": str(tiny_clip.config_path), "checkpoint": tiny_clip.checkpoint_path}
    source = resolve_source(VisionSettings(**base, checkpoint_sha256=digest))
    assert (source.kind, source.version, source.calibrated) == ("checkpoint", digest[:12], True)
    with pytest.raises(ModelSourceError, match=f"{tiny_clip.checkpoint_path} has sha256 {digest}"):
        resolve_source(VisionSettings(**base, checkpoint_sha256="f" * 64))
    # a `<file>.sha256` sidecar pins it too
    copy = tmp_path / "weights.pt"
    copy.write_bytes(tiny_clip.checkpoint_path.read_bytes())
    sidecar = tmp_path / "weights.pt.sha256"
    sidecar.write_text(f"{'a' * 64}  weights.pt\n")
    with pytest.raises(ModelSourceError, match=r"expected a{64}"):
        resolve_source(VisionSettings(arch=str(tiny_clip.config_path), checkpoint=copy))
    sidecar.write_text(f"{digest}  weights.pt\n")
    assert (
        resolve_source(VisionSettings(arch=str(tiny_clip.config_path), checkpoint=copy)).version
        == digest[:12]
    )


def test_architecture_errors_are_explained(tmp_path: Path) -> None:
    with pytest.raises(ModelSourceError, match="unknown open_clip architecture 'ViT-Q-99'"):
        resolve_source(VisionSettings(arch="ViT-Q-99", allow_uncalibrated=True))
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"embed_dim": 8}))
    with pytest.raises(ModelSourceError, match="not an open_clip model config"):
        resolve_source(VisionSettings(arch=str(bad), allow_uncalibrated=True))


def test_hub_tags_are_checked_offline_and_marked_calibrated() -> None:
    source = resolve_source(VisionSettings(pretrained="laion2b_s34b_b79k"))
    assert (source.kind, source.display_name, source.version) == ("hub", "ViT-B-32", "laion2b_s34b_b79k")
    with pytest.raises(ModelSourceError, match="not an open_clip pretrained tag"):
        resolve_source(VisionSettings(pretrained="my-own-weights"))


def test_random_weights_only_when_allowed_and_never_calibrated() -> None:
    source = resolve_source(VisionSettings(allow_uncalibrated=True))
    assert (source.kind, source.version, source.calibrated) == ("random", "random-init", False)


def test_import_rejects_weights_that_do_not_fit_the_architecture(tiny_clip: TinyClip, tmp_path: Path) -> None:
    other = tmp_path / "wider-tiny-clip.json"
    other.write_text(json.dumps({**TINY_CFG, "embed_dim": 32}))
    with pytest.raises(ModelSourceError, match="Check that MODGATE_VISION_ARCH matches"):
        import_to_store(tiny_clip.checkpoint_path, str(other), "never-stored:v1")


IMPORT_COMMAND = [sys.executable, "-m", "services.vision.import_model"]
_STORE_PROBE = """
import json, sys
from pathlib import Path
from services.vision.config import VisionSettings
from services.vision.models import ModelSourceError, load_clip, pick_device, resolve_source
from services.vision.encoder import ClipEncoder
source = resolve_source(VisionSettings(model_tag=sys.argv[1]))
encoder = ClipEncoder(load_clip(source, pick_device("cpu")), variant="stable")
report = {"info": encoder.info.model_dump(), "text": encoder.encode_texts(["a red circle"]).tolist()}
# then corrupt the stored weights: the next resolution must refuse them
weights = Path(source.open_clip_name.removeprefix("local-dir:")) / "open_clip_pytorch_model.bin"
weights.write_bytes(weights.read_bytes() + b"\\0")
try:
    resolve_source(VisionSettings(model_tag=sys.argv[1]))
except ModelSourceError as exc:
    report["tampered"] = {"file": str(weights), "error": str(exc)}
print(json.dumps(report))
"""


def test_store_import_round_trip_and_tamper_check(tiny_clip: TinyClip, tmp_path: Path) -> None:
    """The real import command writes the store entry; a fresh process serves the same model
    from the tag, and refuses the entry once its weights file is altered."""
    env = service_env(tmp_path)
    tag = "modgate-vision-test:v1"
    args = [
        "--checkpoint",
        str(tiny_clip.checkpoint_path),
        "--arch",
        str(tiny_clip.config_path),
        "--tag",
        tag,
    ]
    imported = subprocess.run(
        [*IMPORT_COMMAND, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=600
    )
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.strip().splitlines()[0] == tag
    probed = subprocess.run(
        [sys.executable, "-c", _STORE_PROBE, tag],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert probed.returncode == 0, probed.stderr
    stored = json.loads(probed.stdout.strip().splitlines()[-1])

    from services.vision.encoder import ClipEncoder
    from services.vision.models import load_clip, pick_device

    direct = resolve_source(
        VisionSettings(arch=str(tiny_clip.config_path), checkpoint=tiny_clip.checkpoint_path)
    )
    encoder = ClipEncoder(load_clip(direct, pick_device("cpu")), variant="stable")
    assert stored["info"]["name"] == "modgate-tiny-clip"
    assert stored["info"]["version"] == sha256_file(tiny_clip.checkpoint_path)[:12]
    assert stored["info"]["calibrated"] is True
    np.testing.assert_allclose(stored["text"], encoder.encode_texts(["a red circle"]), atol=1e-6)
    tampered = stored["tampered"]
    assert tampered["file"] in tampered["error"] and "sha256" in tampered["error"]
    assert tampered["file"].startswith(str(tmp_path / "bentoml" / "models"))


# --- preprocessing parity with open_clip ----------------------------------------------------------


@pytest.mark.parametrize("canvas", [(128, 96), (96, 128), (97, 61), (40, 40), (20, 33), (640, 360)])
@pytest.mark.parametrize(
    ("resize_mode", "interpolation"),
    [("shortest", "bicubic"), ("squash", "bilinear"), ("shortest", "bilinear")],
)
def test_resize_matches_open_clip_eval_transform(
    canvas: tuple[int, int], resize_mode: str, interpolation: str
) -> None:
    import open_clip
    import torch

    size = 32
    image = shape_image("red", "triangle", seed=canvas[0] * 7 + canvas[1], canvas=canvas)
    pre = Preprocess(
        size=size,
        mean=open_clip.OPENAI_DATASET_MEAN,
        std=open_clip.OPENAI_DATASET_STD,
        interpolation=interpolation,  # type: ignore[arg-type]
        resize_mode=resize_mode,  # type: ignore[arg-type]
    )
    ours = resize_to_model(image, pre)
    assert ours.shape == (size, size, 3) and ours.dtype == np.uint8
    reference = open_clip.image_transform(
        size, is_train=False, resize_mode=resize_mode, interpolation=interpolation
    )(image)
    mean = torch.tensor(pre.mean).view(3, 1, 1)
    std = torch.tensor(pre.std).view(3, 1, 1)
    normalised = (torch.from_numpy(ours).permute(2, 0, 1).float() / 255.0 - mean) / std
    torch.testing.assert_close(normalised, reference, atol=1e-5, rtol=0)


def test_large_jpeg_decodes_close_to_the_full_resolution_path() -> None:
    """libjpeg's draft downscale (kept >= 2x the model size) barely moves pixels."""
    image = shape_image("blue", "circle", seed=3, canvas=(1280, 720))
    pre = Preprocess(size=64, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    data = jpeg_bytes(image, quality=95)
    fast = decode_image(data, pre, label="frame 0").astype(np.int16)
    full = resize_to_model(Image.open(io.BytesIO(data)), pre).astype(np.int16)
    assert fast.shape == full.shape == (64, 64, 3)
    assert np.abs(fast - full).mean() < 2.0


def test_undecodable_bytes_are_a_frame_error() -> None:
    pre = Preprocess(size=32, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    with pytest.raises(FrameError, match=r"frame 3 .* not a decodable image"):
        decode_image(b"GIF89a-but-not-really", pre, label="frame 3 (timestamp 0 ms)")


# --- calibration ---------------------------------------------------------------------------------

POLICY = {
    "name": "calib",
    "version": "1",
    "neutral": {"vision_prompts": ["n0", "n1"], "text_exemplars": ["x"]},
    "categories": {
        "a": {"description": "a", "vision": {"prompts": ["a0", "a1"], "threshold": 0.5, "temperature": 0.1}},
        "b": {"description": "b", "vision": {"prompts": ["b0"], "threshold": 0.2, "temperature": 0.05}},
    },
    "profanity": {"enabled": False},
}
# Orthonormal basis: a0, a1, b0, n0, n1 -> e0..e4
EMBED = {name: np.eye(5, dtype=np.float32)[i] for i, name in enumerate(["a0", "a1", "b0", "n0", "n1"])}


async def _encode(texts: list[str]) -> np.ndarray:
    return np.stack([EMBED[t] for t in texts])


def test_scores_follow_the_documented_formula() -> None:
    bank = asyncio.run(build_prompt_bank(parse_policy(POLICY), _encode))
    assert bank.categories == ["a", "b"]
    # frame 0 sits on a0; frame 1 halfway between b0 and n0
    frames = np.stack([EMBED["a0"], (EMBED["b0"] + EMBED["n0"]) / np.sqrt(2)]).astype(np.float32)
    scale = 10.0
    shares = category_shares(frames, bank, scale)
    ensemble_a = (EMBED["a0"] + EMBED["a1"]) / np.sqrt(2)  # renormalised mean of the ensemble

    def share(x: np.ndarray, e: np.ndarray) -> float:
        logits = scale * np.array([x @ e, x @ EMBED["n0"], x @ EMBED["n1"]])
        return float(np.exp(logits[0]) / np.exp(logits).sum())

    for row in range(2):
        assert shares[row, 0] == pytest.approx(share(frames[row], ensemble_a), abs=1e-6)
        assert shares[row, 1] == pytest.approx(share(frames[row], EMBED["b0"]), abs=1e-6)
    scores, best = score_frames(frames, bank, scale)
    sigmoid = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
    assert scores[0]["a"] == pytest.approx(sigmoid((shares[0, 0] - 0.5) / 0.1), abs=1e-6)
    assert scores[1]["b"] == pytest.approx(sigmoid((shares[1, 1] - 0.2) / 0.05), abs=1e-6)
    assert best[0]["a"] == "a0" and best[1]["b"] == "b0"
    assert all(0.0 <= v <= 1.0 for s in scores for v in s.values())


# --- policy reloads -------------------------------------------------------------------------------


def test_policy_store_reloads_changes_and_keeps_the_last_good_version(tmp_path: Path) -> None:
    path = tmp_path / "calib.yaml"
    path.write_text(json.dumps(POLICY))
    store = PolicyStore(tmp_path, keep_policy, reload_s=0.0)
    assert store.get("calib").version == "1"

    path.write_text(json.dumps({**POLICY, "version": "2"}))
    assert store.get("calib", "2").version == "2"

    path.write_text("name: calib\nversion: [not valid")
    assert store.get("calib", "3").version == "2"  # broken file: the last good one stays
    with pytest.raises(UnknownPolicyError, match="'other' is not loaded"):
        store.get("other")
