"""Semantic scoring: calibration fitted from the exemplars, deterministic, attribution per category."""

from __future__ import annotations

import time

import numpy as np

from services.text.classifier import DEFAULT_SLOPE, SemanticClassifier, fit_platt
from services.text.encoder import Encoder
from services.text.pipeline import PolicyBundle, TextModerator


def test_platt_fit_recovers_a_known_sigmoid() -> None:
    rng = np.random.default_rng(7)
    margins = rng.uniform(-0.5, 0.5, 4000)
    labels = (rng.uniform(size=margins.size) < 1 / (1 + np.exp(-(12 * margins - 1.0)))).astype(float)
    slope, intercept = fit_platt(margins, labels)
    # Balanced weighting shifts the intercept by the log prior ratio; the slope stays.
    assert 9 < slope < 15
    prior = np.log(labels.mean() / (1 - labels.mean()))
    assert abs((intercept + prior) - (-1.0)) < 0.4


def test_default_policy_is_calibrated(default_bundle: PolicyBundle) -> None:
    calibration = default_bundle.classifier.calibration
    assert calibration.fitted
    assert calibration.slope > 1 and np.isfinite(calibration.intercept)
    # Every exemplar against every category, plus the neutral ones.
    names = default_bundle.classifier.names
    assert calibration.samples > len(names) * 40


def test_building_is_deterministic_and_fast(
    moderator: TextModerator, default_bundle: PolicyBundle, text_encoder: Encoder
) -> None:
    started = time.perf_counter()
    again = moderator.build_policy(default_bundle.policy, text_encoder.encode)
    elapsed = time.perf_counter() - started
    assert again.classifier.calibration == default_bundle.classifier.calibration
    assert elapsed < 10, f"policy build took {elapsed:.1f}s"  # generous: shared 2-core machine


def test_exemplars_score_as_their_own_category(
    default_bundle: PolicyBundle, text_encoder: Encoder, moderator: TextModerator
) -> None:
    classifier = default_bundle.classifier
    policy = default_bundle.policy
    for c, name in enumerate(classifier.names):
        exemplars = classifier.exemplars[name]
        scores = classifier.score(text_encoder.encode([moderator.view(e) for e in exemplars])).scores
        # An exemplar is its own nearest neighbour, so its category must come out on top.
        assert (scores.argmax(axis=1) == c).mean() >= 0.75, name
        assert (scores[:, c] >= policy.categories[name].thresholds.review).all(), name


def test_benign_anchors_score_low(
    default_bundle: PolicyBundle, text_encoder: Encoder, moderator: TextModerator
) -> None:
    neutral = default_bundle.policy.neutral.text_exemplars
    scores = default_bundle.classifier.score(text_encoder.encode([moderator.view(t) for t in neutral])).scores
    assert scores.max() < 0.5


def test_too_few_exemplars_stays_uncalibrated(text_encoder: Encoder) -> None:
    classifier = SemanticClassifier(
        {"violence": ["I will hurt you."]}, ["Nice weather."], text_encoder.encode
    )
    assert not classifier.calibration.fitted
    assert classifier.calibration.slope == DEFAULT_SLOPE
    result = classifier.score(text_encoder.encode(["I am going to hurt you badly."]))
    assert result.scores.shape == (1, 1) and 0.0 <= result.scores[0, 0] <= 1.0
    assert classifier.exemplar(0, int(result.nearest[0, 0])) == "I will hurt you."


def test_category_without_exemplars_is_skipped(text_encoder: Encoder) -> None:
    classifier = SemanticClassifier(
        {"a": ["I will hurt you.", "You will bleed."], "b": []},
        ["Nice weather.", "Good food."],
        text_encoder.encode,
    )
    assert classifier.names == ["a"]
    assert classifier.score(np.zeros((0, text_encoder.dimension), dtype=np.float32)).scores.shape == (0, 1)
