"""The shipped scorer (policy "multilingual") on the labelled set's test split, read the way the
gateway decides.

The test split was never trained or tuned on (services/text/train/data.py fixes it by the text;
the trainer fits on train and chooses on dev). The issue's bars are flagged-vs-benign F1 >= 0.92,
hard-benign false-positive rate <= 8%, non-English recall >= 0.85 and right category >= 90% of
true positives; the shipped scorer reaches F1 0.891, hard-benign FPR 0.117, non-English recall
0.894 and right category 0.897 (services/text/scorers/REPORT.md), so only the non-English bar is
met. The floors below are those figures less a small margin: a retrained scorer must not fall
back. Raise them with the next scorer; the issue's bars are the target. The figures are printed
with -s.
"""

from __future__ import annotations

import pytest

from modgate.policy import Policy
from modgate.wire import TextItem
from services.text.encoder import Encoder
from services.text.pipeline import PolicyBundle, TextModerator
from services.text.train import evaluate
from services.text.train.data import load_examples


@pytest.fixture(scope="module")
def test_rows(
    service_moderator: TextModerator,
    service_encoder: Encoder,
    scored_bundle: PolicyBundle,
    default_policy: Policy,
) -> list[evaluate.Outcome]:
    examples = [e for e in load_examples(set(default_policy.text_categories())) if e.split == "test"]
    items = [TextItem(id=str(i), text=e.text, source="caption") for i, e in enumerate(examples)]
    results = service_moderator.moderate(items, scored_bundle, service_encoder.encode)
    rows = evaluate.outcomes(examples, results, default_policy)
    print("\n" + evaluate.markdown("shipped scorer, test split", rows))
    return rows


def test_flagged_vs_benign_f1(test_rows: list[evaluate.Outcome]) -> None:
    assert evaluate.figures(test_rows)["f1"] >= 0.88  # issue bar 0.92: not yet reached


def test_hard_benign_false_positive_rate(test_rows: list[evaluate.Outcome]) -> None:
    assert evaluate.figures(test_rows)["hard_benign_fpr"] <= 0.13  # issue bar 0.08: not yet reached


def test_non_english_recall(test_rows: list[evaluate.Outcome]) -> None:
    assert evaluate.figures(test_rows)["non_english_recall"] >= 0.85  # the bar


def test_right_category(test_rows: list[evaluate.Outcome]) -> None:
    assert evaluate.figures(test_rows)["right_category"] >= 0.88  # issue bar 0.90: not yet reached


def test_a_greeting_does_not_dilute_a_threat(
    service_moderator: TextModerator, service_encoder: Encoder, scored_bundle: PolicyBundle
) -> None:
    threat = "I know where you live and I am coming for you tonight."
    long = f"Hello everyone, welcome to my channel. Today we are baking bread with my grandmother. {threat}"
    alone, diluted = service_moderator.moderate(
        [TextItem(id="a", text=threat, source="caption"), TextItem(id="b", text=long, source="caption")],
        scored_bundle,
        service_encoder.encode,
    )
    assert diluted.scores["violence"] >= 0.5
    assert diluted.scores["violence"] == pytest.approx(alone.scores["violence"], abs=0.05)
    best = max(
        (m for m in diluted.matches if m.category == "violence" and m.signal == "classifier"),
        key=lambda m: m.score,
    )
    assert long[best.span_start : best.span_end] == threat  # the evidence is the threatening sentence


def test_non_english_threats_are_scored_with_the_right_category(
    service_moderator: TextModerator, service_encoder: Encoder, scored_bundle: PolicyBundle
) -> None:
    threats = [
        "Sé dónde vives y esta noche te voy a matar.",
        "Eu sei onde você mora e vou te matar hoje à noite.",
        "Je sais où tu habites et je vais te tuer ce soir.",
    ]
    results = service_moderator.moderate(
        [TextItem(id=str(i), text=t, source="transcript") for i, t in enumerate(threats)],
        scored_bundle,
        service_encoder.encode,
    )
    for text, result in zip(threats, results, strict=True):
        assert result.scores["violence"] >= 0.5, (text, result.scores)
        assert not any("low-confidence" in note for note in result.notes), result.notes


def _flagged_macro_f1(results: list, truth: list[bool], policy: Policy) -> float:
    review = {name: c.thresholds.review for name, c in policy.categories.items()}
    flagged = [any(v >= review[c] for c, v in r.scores.items()) for r in results]

    def f1(p: list[bool], a: list[bool]) -> float:
        tp = sum(x and y for x, y in zip(p, a, strict=True))
        fp = sum(x and not y for x, y in zip(p, a, strict=True))
        fn = sum(y and not x for x, y in zip(p, a, strict=True))
        return 2 * tp / (2 * tp + fp + fn) if tp else 0.0

    return (f1(flagged, truth) + f1([not x for x in flagged], [not y for y in truth])) / 2


def test_the_previous_test_set_figure_of_each_scorer(
    service_moderator: TextModerator,
    service_encoder: Encoder,
    scored_bundle: PolicyBundle,
    moderator: TextModerator,
    text_encoder: Encoder,
    default_bundle: PolicyBundle,
    default_policy: Policy,
) -> None:
    """services/text/data/legacy_heldout.tsv (the held-out set the exemplar scorer was tuned on):
    the default policy (exemplars) keeps its 0.978; the trained scorer reaches 0.882 on it, worse,
    which is why the scorer is opt-in (policy "multilingual") and not the default. Floors: the
    exemplar scorer's own, and the trained scorer's less a margin."""
    from tests.services.text.test_text_quality import LABELLED

    items = [TextItem(id=str(i), text=s, source="caption") for i, (s, _) in enumerate(LABELLED)]
    truth = [bool(labels) for _, labels in LABELLED]
    before = _flagged_macro_f1(
        moderator.moderate(items, default_bundle, text_encoder.encode), truth, default_policy
    )
    after = _flagged_macro_f1(
        service_moderator.moderate(items, scored_bundle, service_encoder.encode), truth, default_policy
    )
    print(
        f"\nlegacy held-out set ({len(items)}): macro F1 exemplars {before:.3f} -> trained scorer {after:.3f}"
    )
    assert before >= 0.95
    assert after >= 0.85  # the issue asks for >= before: not yet reached


def test_no_training_sentence_is_in_the_previous_test_set(default_policy: Policy) -> None:
    from services.text.train.data import canonical
    from tests.services.text.test_text_quality import LABELLED

    training = {canonical(e.text) for e in load_examples(set(default_policy.text_categories()))}
    assert not training & {canonical(s) for s, _ in LABELLED}
