"""Semantic scoring: how close a text is to a category's exemplars, relative to benign text.

For a text embedding x (unit length, so dot product = cosine similarity):

* ``pos_c``  = mean of the top-k similarities of x to category c's exemplars;
* ``neg``    = mean of the top-k similarities of x to the policy's neutral (benign) exemplars;
* ``p_c``    = sigmoid(slope * (pos_c - neg) + intercept) - how much more x resembles the category
  than benign text, on a probability scale;
* ``score_c`` = p_c * exp((pos_c - max_c' pos_c') / temperature) - the category that x resembles
  most keeps p_c; categories clearly behind it fade, so a threat is scored as violence rather than
  as everything at once (two close categories both keep high scores).

The slope and intercept are fitted when a policy is loaded (deterministic, milliseconds):
leave-one-out over the exemplars themselves - each exemplar is scored against all the others,
labelled with its own category - and Platt scaling (balanced classes, smoothed targets, Newton's
method) on those margins. A policy with too few exemplars to fit keeps default values and is
reported as uncalibrated.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

Embedder = Callable[[list[str]], np.ndarray]

DEFAULT_SLOPE = 20.0
DEFAULT_INTERCEPT = -1.1


@dataclass(frozen=True)
class Calibration:
    slope: float
    intercept: float
    fitted: bool  # False: too few exemplars to fit; defaults in use
    samples: int = 0

    def apply(self, margin: np.ndarray) -> np.ndarray:
        return _sigmoid(self.slope * margin + self.intercept)


@dataclass(frozen=True)
class SemanticScores:
    scores: np.ndarray  # (n, categories) in [0, 1]
    nearest: np.ndarray  # (n, categories) index of the most similar exemplar of each category


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -60.0, 60.0)))


def _top_k_mean(sims: np.ndarray, k: int) -> np.ndarray:
    """Mean of the k largest values per row, ignoring -inf (masked) entries; -inf if none."""
    finite = np.isfinite(sims)
    available = finite.sum(axis=1)
    k_eff = np.minimum(k, available)
    ordered = -np.sort(-np.where(finite, sims, -np.inf), axis=1)
    out = np.full(sims.shape[0], -np.inf)
    for row in range(sims.shape[0]):
        if k_eff[row] > 0:
            out[row] = ordered[row, : k_eff[row]].mean()
    return out


def fit_platt(
    margins: np.ndarray, labels: np.ndarray, l2: float = 1e-3, steps: int = 50
) -> tuple[float, float]:
    """Platt scaling with balanced class weights and Platt's smoothed targets (which keep the
    fit finite when the classes separate perfectly, as they do on a handful of exemplars)."""
    positives = float(labels.sum())
    negatives = float(len(labels) - positives)
    targets = np.where(labels == 1, (positives + 1) / (positives + 2), 1 / (negatives + 2))
    weights = np.where(labels == 1, len(labels) / (2 * positives), len(labels) / (2 * negatives))
    slope, intercept = DEFAULT_SLOPE, 0.0
    for _ in range(steps):
        p = _sigmoid(slope * margins + intercept)
        residual = weights * (p - targets)
        gradient = np.array([(residual * margins).sum() + l2 * slope, residual.sum()])
        curvature = weights * p * (1 - p)
        hessian = np.array(
            [
                [(curvature * margins * margins).sum() + l2, (curvature * margins).sum()],
                [(curvature * margins).sum(), curvature.sum() + 1e-9],
            ]
        )
        step = np.linalg.solve(hessian, gradient)
        slope, intercept = slope - float(step[0]), intercept - float(step[1])
        if np.abs(step).max() < 1e-9:
            break
    return slope, intercept


class SemanticClassifier:
    """One policy's categories and benign anchors, embedded once; scores text embeddings."""

    def __init__(
        self,
        categories: dict[str, Sequence[str]],
        neutral: Sequence[str],
        embed: Embedder,
        *,
        top_k: int = 2,
        temperature: float = 0.03,
    ) -> None:
        self.names = [name for name, exemplars in categories.items() if exemplars]
        self.exemplars = {name: list(categories[name]) for name in self.names}
        self.top_k = top_k
        self.temperature = temperature
        texts = [e for name in self.names for e in self.exemplars[name]] + list(neutral)
        vectors = embed(texts) if texts else np.zeros((0, 0), dtype=np.float32)
        self._sizes = [len(self.exemplars[name]) for name in self.names]
        offsets = np.cumsum([0, *self._sizes])
        self._category_vectors = [vectors[offsets[i] : offsets[i + 1]] for i in range(len(self.names))]
        self._neutral_vectors = vectors[offsets[-1] :]
        self.calibration = self._calibrate()

    # --- fitting ---

    def _margins(self, sims_by_category: list[np.ndarray], sims_neutral: np.ndarray) -> np.ndarray:
        pos = np.stack([_top_k_mean(s, self.top_k) for s in sims_by_category], axis=1)
        neg = _top_k_mean(sims_neutral, self.top_k)
        return pos - neg[:, None]

    def _calibrate(self) -> Calibration:
        """Leave-one-out margins of every exemplar, then Platt scaling over all categories."""
        if len(self.names) == 0 or len(self._neutral_vectors) < 2:
            return Calibration(DEFAULT_SLOPE, DEFAULT_INTERCEPT, fitted=False)
        anchors = np.concatenate([*self._category_vectors, self._neutral_vectors])
        sims = anchors @ anchors.T
        np.fill_diagonal(sims, -np.inf)  # an exemplar never votes for itself
        offsets = np.cumsum([0, *self._sizes])
        by_category = [sims[:, offsets[i] : offsets[i + 1]] for i in range(len(self.names))]
        margins = self._margins(by_category, sims[:, offsets[-1] :])
        owner = np.full(len(anchors), -1)
        for i in range(len(self.names)):
            owner[offsets[i] : offsets[i + 1]] = i
        labels = (owner[:, None] == np.arange(len(self.names))[None, :]).astype(np.float64)
        valid = np.isfinite(margins)
        m, y = margins[valid], labels[valid]
        if y.sum() < 3 or (1 - y).sum() < 3:
            return Calibration(DEFAULT_SLOPE, DEFAULT_INTERCEPT, fitted=False)
        slope, intercept = fit_platt(m, y)
        if not (np.isfinite(slope) and np.isfinite(intercept)) or slope <= 0:
            return Calibration(DEFAULT_SLOPE, DEFAULT_INTERCEPT, fitted=False)
        return Calibration(slope, intercept, fitted=True, samples=len(m))

    # --- scoring ---

    def score(self, embeddings: np.ndarray) -> SemanticScores:
        n = embeddings.shape[0]
        if n == 0 or not self.names:
            empty = np.zeros((n, len(self.names)))
            return SemanticScores(empty, empty.astype(int))
        sims = [embeddings @ vectors.T for vectors in self._category_vectors]
        sims_neutral = embeddings @ self._neutral_vectors.T
        pos = np.stack([_top_k_mean(s, self.top_k) for s in sims], axis=1)
        neg = _top_k_mean(sims_neutral, self.top_k)
        probability = self.calibration.apply(pos - neg[:, None])
        attribution = np.exp((pos - pos.max(axis=1, keepdims=True)) / self.temperature)
        nearest = np.stack([s.argmax(axis=1) for s in sims], axis=1)
        return SemanticScores(np.clip(probability * attribution, 0.0, 1.0), nearest)

    def exemplar(self, category_index: int, exemplar_index: int) -> str:
        return self.exemplars[self.names[category_index]][exemplar_index]
