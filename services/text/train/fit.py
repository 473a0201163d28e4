"""Fitting the scorer: one L2-regularised logistic regression per category, then Platt scaling.

Features are standardised on the training split for the fit (so one L2 strength suits every
coordinate) and the scaling is folded back into the weights, so the artifact scores the
encoder's raw vectors. Positives are up-weighted by sqrt(negatives / positives): a category has
about a ninth of the sentences, and full balancing would trade too much precision for recall.
The L2 strength is chosen on the dev split; Platt scaling (two numbers per category, fitted on
dev, unweighted, with Platt's smoothed targets) turns each logit into a probability.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -60.0, 60.0)))


def fit_logistic(
    x: np.ndarray, y: np.ndarray, *, l2: float, sample_weight: np.ndarray, steps: int = 30
) -> tuple[np.ndarray, float]:
    """Newton's method on sum(w_i * logloss_i) + l2/2 * |beta|^2 (the bias is not penalised)."""
    n, d = x.shape
    design = np.hstack([x, np.ones((n, 1))])
    beta = np.zeros(d + 1)
    penalty = np.full(d + 1, l2)
    penalty[-1] = 0.0
    for _ in range(steps):
        p = _sigmoid(design @ beta)
        gradient = design.T @ (sample_weight * (p - y)) + penalty * beta
        curvature = sample_weight * p * (1 - p)
        hessian = (design * curvature[:, None]).T @ design + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hessian, gradient)
        beta -= step
        if np.abs(step).max() < 1e-7:
            break
    return beta[:-1], float(beta[-1])


def fit_platt_unweighted(logits: np.ndarray, y: np.ndarray, steps: int = 100) -> tuple[float, float]:
    """Platt (1999): sigmoid(a * logit + c) fitted to smoothed targets, by Newton's method with
    step halving (a raw Newton step diverges when the logits are large and the classes separate)."""
    positives = float(y.sum())
    negatives = float(len(y) - positives)
    targets = np.where(y == 1, (positives + 1) / (positives + 2), 1 / (negatives + 2))

    def loss(a: float, c: float) -> float:
        z = a * logits + c
        return float((np.logaddexp(0.0, z) - targets * z).sum())

    a, c = 1.0, 0.0
    current = loss(a, c)
    for _ in range(steps):
        p = _sigmoid(a * logits + c)
        residual = p - targets
        gradient = np.array([(residual * logits).sum(), residual.sum()])
        w = p * (1 - p) + 1e-12
        hessian = np.array(
            [[(w * logits * logits).sum() + 1e-6, (w * logits).sum()], [(w * logits).sum(), w.sum() + 1e-6]]
        )
        step = np.linalg.solve(hessian, gradient)
        scale = 1.0
        while scale > 1e-6:
            trial = loss(a - scale * float(step[0]), c - scale * float(step[1]))
            if trial <= current:
                break
            scale /= 2
        else:
            break
        a, c = a - scale * float(step[0]), c - scale * float(step[1])
        improved = current - trial
        current = trial
        if improved < 1e-10:
            break
    return a, c


@dataclass(frozen=True)
class Fitted:
    """Row 0: the violating head (any category against benign); rows 1..: one per category.
    With `hidden` (an MLP), the heads read relu(x @ W1 + b1) instead of x."""

    weights: np.ndarray  # (1 + categories, dimension or hidden units)
    bias: np.ndarray
    slope: np.ndarray
    intercept: np.ndarray
    l2: float
    hidden: tuple[np.ndarray, np.ndarray] | None = None  # (W1 (dimension, units), b1 (units,))
    model: str = "logistic"

    def inputs(self, x: np.ndarray) -> np.ndarray:
        if self.hidden is None:
            return x
        return np.maximum(0.0, x @ self.hidden[0] + self.hidden[1])

    def heads(self, x: np.ndarray) -> np.ndarray:
        return _sigmoid(self.slope * (self.inputs(x) @ self.weights.T + self.bias) + self.intercept)

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        return attribute(self.heads(x))


def attribute(heads: np.ndarray) -> np.ndarray:
    """(n, 1 + categories) head probabilities -> (n, categories) scores: the most likely category
    scores P(violating); another scores P(violating) times its probability relative to the top
    one. So the score a threshold is compared with is the probability that the text violates the
    policy, attributed to the categories by how likely each is."""
    violating, categories = heads[:, :1], heads[:, 1:]
    top = np.maximum(categories.max(axis=1, keepdims=True), 1e-12)
    return violating * categories / top


def fit_categories(
    x_train: np.ndarray,
    labels_train: list[str],
    x_dev: np.ndarray,
    labels_dev: list[str],
    categories: list[str],
    *,
    l2: float,
    category_l2: float | None = None,
) -> Fitted:
    """The violating head on every sentence; each category head on the violations only, so it
    learns P(category | violating) (telling hate from harassment) rather than benign text again."""
    mean = x_train.mean(axis=0)
    scale = x_train.std(axis=0) + 1e-6
    z_train = (x_train - mean) / scale
    weights, bias, slopes, intercepts = [], [], [], []
    violating_train = np.array([label != "benign" for label in labels_train])
    violating_dev = np.array([label != "benign" for label in labels_dev])
    for category in [None, *categories]:
        rows = slice(None) if category is None else violating_train
        dev_rows = slice(None) if category is None else violating_dev
        y = np.array([_positive(label, category) for label in labels_train], dtype=np.float64)[rows]
        positives = max(1.0, y.sum())
        up = np.sqrt(max(1.0, (len(y) - positives) / positives))
        strength = l2 if category is None or category_l2 is None else category_l2
        w_std, b_std = fit_logistic(z_train[rows], y, l2=strength, sample_weight=np.where(y == 1, up, 1.0))
        w_raw = w_std / scale  # w.(x - m)/s + b = (w/s).x + (b - (w/s).m)
        b_raw = b_std - float(w_raw @ mean)
        y_dev = np.array([_positive(label, category) for label in labels_dev], dtype=np.float64)[dev_rows]
        a, c = fit_platt_unweighted(x_dev[dev_rows] @ w_raw + b_raw, y_dev)
        weights.append(w_raw)
        bias.append(b_raw)
        slopes.append(a)
        intercepts.append(c)
    return Fitted(
        np.asarray(weights, dtype=np.float32),
        np.asarray(bias, dtype=np.float32),
        np.asarray(slopes),
        np.asarray(intercepts),
        l2,
    )


def _positive(label: str, category: str | None) -> bool:
    """None: the violating head (every category is a positive)."""
    return label != "benign" if category is None else label == category


def fit_mlp(
    x_train: np.ndarray,
    labels_train: list[str],
    x_dev: np.ndarray,
    labels_dev: list[str],
    categories: list[str],
    *,
    alpha: float,
    units: int = 128,
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4),
) -> Fitted:
    """An ensemble of one-hidden-layer (ReLU) networks, each trained multi-label (violating + one
    output per category) with scikit-learn's Adam from its own seed; their output logits are
    averaged, which is one network whose hidden layer is the members' side by side (so the
    artifact and the service's arithmetic are the same as for one). Averaging several seeds
    removes most of one network's confident mistakes on plain text. Each output is then
    Platt-scaled on dev (category outputs on dev violations only, as for the logistic heads)."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    def targets(labels: list[str]) -> np.ndarray:
        return np.array([[_positive(label, c) for c in [None, *categories]] for label in labels], dtype=int)

    y_train = targets(labels_train)
    w1, b1, w2, b2 = [], [], [], []
    for seed in seeds:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            net = MLPClassifier((units,), alpha=alpha, max_iter=200, random_state=seed).fit(x_train, y_train)
        w1.append(net.coefs_[0])
        b1.append(net.intercepts_[0])
        w2.append(net.coefs_[1] / len(seeds))
        b2.append(net.intercepts_[1] / len(seeds))
    hidden = (np.hstack(w1).astype(np.float32), np.concatenate(b1).astype(np.float32))
    weights = np.vstack(w2).T.astype(np.float32)  # (outputs, members x units)
    bias = np.sum(b2, axis=0).astype(np.float32)
    logits = np.maximum(0.0, x_dev @ hidden[0] + hidden[1]) @ weights.T + bias
    y_dev = targets(labels_dev)
    violating_dev = y_dev[:, 0] == 1
    slopes, intercepts = [], []
    for j in range(weights.shape[0]):
        rows = slice(None) if j == 0 else violating_dev
        a, c = fit_platt_unweighted(logits[rows, j], y_dev[rows, j].astype(np.float64))
        slopes.append(a)
        intercepts.append(c)
    model = f"mlp{units}x{len(seeds)}"
    return Fitted(weights, bias, np.asarray(slopes), np.asarray(intercepts), alpha, hidden, model=model)
