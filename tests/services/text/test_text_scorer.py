"""The trained scorer artifact: what it computes, and every refusal the service relies on."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from modgate.policy import Policy, PolicyError, TextScorer
from services.text.models import PINNED_SHA256, WEIGHTS_FILE
from services.text.scorer import (
    DEFAULT_SCORER_DIR,
    ScorerError,
    TrainedScorer,
    load_scorer,
    scorer_for_policy,
)
from services.text.usem import USEM_PINS, USEM_WEIGHTS

SERVICE_IDENTITY = {
    "usem3-multilingual-v3": USEM_PINS[USEM_WEIGHTS][:12],
    "all-MiniLM-L6-v2": PINNED_SHA256[WEIGHTS_FILE][:12],
}


def tiny_scorer(categories: list[str] | None = None) -> TrainedScorer:
    categories = categories or ["violence", "hate"]
    rng = np.random.default_rng(0)
    return TrainedScorer(
        version="test-1",
        encoder="usem3",
        encoder_identity={"usem3-multilingual-v3": "abc"},
        categories=categories,
        weights=rng.normal(size=(len(categories) + 1, 4)).astype(np.float32),
        bias=np.zeros(len(categories) + 1, dtype=np.float32),
        slope=np.ones(len(categories) + 1),
        intercept=np.zeros(len(categories) + 1),
        training={"note": "test"},
    )


def write(tmp_path: Path, scorer: TrainedScorer) -> tuple[str, str]:
    path = tmp_path / "s.json"
    path.write_text(scorer.to_json(), encoding="utf-8")
    return path.name, hashlib.sha256(path.read_bytes()).hexdigest()


def test_scores_are_p_violating_attributed_to_the_most_likely_category() -> None:
    scorer = tiny_scorer()
    x = np.random.default_rng(1).normal(size=(5, 4)).astype(np.float32)
    heads = scorer.heads(x)
    scores = scorer.score(x)
    for row in range(5):
        top = int(heads[row, 1:].argmax())
        assert scores[row, top] == pytest.approx(heads[row, 0], rel=1e-6)  # the top category: P(violating)
        assert (scores[row] <= heads[row, 0] + 1e-9).all()
    assert scorer.score(np.zeros((0, 4), dtype=np.float32)).shape == (0, 2)


def test_round_trip_keeps_every_number(tmp_path: Path) -> None:
    scorer = tiny_scorer()
    name, digest = write(tmp_path, scorer)
    loaded = load_scorer(
        name, sha256=digest, scorer_dir=tmp_path, encoder_identity={"usem3-multilingual-v3": "abc"}
    )
    assert loaded.sha256 == digest and loaded.categories == scorer.categories
    x = np.random.default_rng(2).normal(size=(3, 4)).astype(np.float32)
    np.testing.assert_allclose(loaded.score(x), scorer.score(x), rtol=1e-6)


def test_refuses_a_file_whose_digest_is_not_the_policys(tmp_path: Path) -> None:
    name, _ = write(tmp_path, tiny_scorer())
    with pytest.raises(ScorerError, match="sha256"):
        load_scorer(name, sha256="0" * 64, scorer_dir=tmp_path)


def test_refuses_another_encoder_and_other_weights_unless_told(tmp_path: Path) -> None:
    name, digest = write(tmp_path, tiny_scorer())
    with pytest.raises(ScorerError, match="MODGATE_TEXT_ENCODER"):
        load_scorer(name, sha256=digest, scorer_dir=tmp_path, encoder_identity={"all-MiniLM-L6-v2": "abc"})
    with pytest.raises(ScorerError, match="retrain"):
        load_scorer(
            name, sha256=digest, scorer_dir=tmp_path, encoder_identity={"usem3-multilingual-v3": "def"}
        )
    # MODGATE_TEXT_VERIFY_CHECKSUMS=false: deliberately different weights (a canary) are accepted.
    load_scorer(
        name,
        sha256=digest,
        scorer_dir=tmp_path,
        encoder_identity={"usem3-multilingual-v3": "def"},
        verify_weights=False,
    )


def test_refuses_a_policy_category_it_was_not_trained_for(tmp_path: Path) -> None:
    name, digest = write(tmp_path, tiny_scorer(["violence"]))
    with pytest.raises(ScorerError, match="hate"):
        load_scorer(name, sha256=digest, scorer_dir=tmp_path, categories=["violence", "hate"])


def test_missing_or_unreadable_files_say_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ScorerError, match=r"python -m services\.text\.train"):
        load_scorer("absent.json", sha256="0" * 64, scorer_dir=tmp_path)
    (tmp_path / "bad.json").write_text('{"format": "other"}')
    digest = hashlib.sha256((tmp_path / "bad.json").read_bytes()).hexdigest()
    with pytest.raises(ScorerError, match="format"):
        load_scorer("bad.json", sha256=digest, scorer_dir=tmp_path)
    assert issubclass(ScorerError, PolicyError)  # a reload keeps the previous policy


def test_the_multilingual_policy_names_the_shipped_artifact(
    multilingual_policy: Policy, default_policy: Policy
) -> None:
    assert default_policy.text_scorer is None  # opt-in: the default policy scores by exemplars
    ref = multilingual_policy.text_scorer
    assert ref is not None and ref.encoder == "usem3+minilm"
    scorer = scorer_for_policy(
        multilingual_policy, encoder_kind="usem3+minilm", encoder_identity=SERVICE_IDENTITY
    )
    assert scorer is not None and scorer.sha256 == ref.sha256
    assert (DEFAULT_SCORER_DIR / ref.artifact).is_file()
    assert set(multilingual_policy.text_categories()) <= set(scorer.categories)
    with pytest.raises(ScorerError, match="MODGATE_TEXT_ENCODER=usem3\\+minilm"):
        scorer_for_policy(
            multilingual_policy, encoder_kind="minilm", encoder_identity={"all-MiniLM-L6-v2": "x"}
        )


def test_policy_schema_checks_the_digest_and_encoder() -> None:
    with pytest.raises(ValueError):
        TextScorer(artifact="a.json", sha256="not-hex", encoder="usem3")
    with pytest.raises(ValueError):
        TextScorer(artifact="a.json", sha256="0" * 64, encoder="bert")  # type: ignore[arg-type]
