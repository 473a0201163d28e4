"""Acceptance: the text classifier on held-out labelled sentences (services/text/data/legacy_heldout.tsv).

A sentence is "flagged" when any category scores at or above that category's review threshold
in the default policy. Reports per-category precision/recall and flagged-vs-benign macro F1
(shown with `pytest -s`, and written to the test's tmp dir).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from modgate.policy import Policy
from modgate.wire import TextItem, TextItemResult
from services.text.encoder import Encoder
from services.text.pipeline import PolicyBundle, TextModerator

MACRO_F1_FLOOR = 0.75
HELDOUT = Path(__file__).resolve().parents[3] / "services" / "text" / "data" / "legacy_heldout.tsv"


def load_labelled(path: Path = HELDOUT) -> list[tuple[str, frozenset[str]]]:
    """(text, categories) per `label<TAB>text` line; "benign" is no category, "a,b" two."""
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            label, text = line.split("\t", 1)
            rows.append((text, frozenset() if label == "benign" else frozenset(label.split(","))))
    return rows


LABELLED = load_labelled()


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9']+", text.lower()))


def _prf(predicted: list[bool], actual: list[bool]) -> tuple[float, float, float, int, int, int]:
    tp = sum(p and a for p, a in zip(predicted, actual, strict=True))
    fp = sum(p and not a for p, a in zip(predicted, actual, strict=True))
    fn = sum(a and not p for p, a in zip(predicted, actual, strict=True))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1, tp, fp, fn


def test_labelled_set_is_large_and_covers_every_kind() -> None:
    assert len(LABELLED) >= 60
    labels = {label for _, ls in LABELLED for label in ls}
    assert {"violence", "harassment", "hate", "self_harm", "sexual", "drugs", "spam_scam"} <= labels
    benign = [s for s, ls in LABELLED if not ls]
    assert len(benign) >= 20
    for idiom in ("killed it", "shoot the music video", "murder a slice of pizza"):
        assert any(idiom in s for s in benign), idiom
    assert len({s for s, _ in LABELLED}) == len(LABELLED), "duplicate sentences"


def test_labelled_sentences_are_not_policy_exemplars(default_policy: Policy) -> None:
    exemplars = [e for rule in default_policy.text_categories().values() for e in rule.exemplars]
    exemplars += list(default_policy.neutral.text_exemplars)
    normalised = {" ".join(sorted(_words(e))) for e in exemplars}
    for sentence, _ in LABELLED:
        assert " ".join(sorted(_words(sentence))) not in normalised, f"leaked exemplar: {sentence!r}"
        overlap = max(
            len(_words(sentence) & _words(e)) / len(_words(sentence) | _words(e)) for e in exemplars
        )
        assert overlap < 0.6, f"{sentence!r} is a near-copy of an exemplar (word overlap {overlap:.2f})"


def test_flagged_vs_benign_macro_f1(
    moderator: TextModerator,
    default_bundle: PolicyBundle,
    default_policy: Policy,
    text_encoder: Encoder,
    tmp_path: Path,
) -> None:
    items = [TextItem(id=str(i), text=s, source="caption") for i, (s, _) in enumerate(LABELLED)]
    results: list[TextItemResult] = moderator.moderate(items, default_bundle, text_encoder.encode)
    review = {name: c.thresholds.review for name, c in default_policy.categories.items()}
    predicted_sets = [{c for c, v in r.scores.items() if v >= review[c]} for r in results]
    actual_sets = [set(labels) for _, labels in LABELLED]

    lines = [
        f"text classifier on {len(LABELLED)} held-out sentences (policy {default_bundle.ref.version})",
        "",
    ]
    lines.append(f"{'category':<12} {'support':>7} {'precision':>9} {'recall':>7} {'f1':>6}")
    for category in default_policy.text_categories():
        predicted = [category in p for p in predicted_sets]
        actual = [category in a for a in actual_sets]
        precision, recall, f1, *_ = _prf(predicted, actual)
        lines.append(f"{category:<12} {sum(actual):>7} {precision:>9.2f} {recall:>7.2f} {f1:>6.2f}")

    flagged_p = [bool(p) for p in predicted_sets]
    flagged_a = [bool(a) for a in actual_sets]
    pf = _prf(flagged_p, flagged_a)
    pb = _prf([not p for p in flagged_p], [not a for a in flagged_a])
    macro_f1 = (pf[2] + pb[2]) / 2
    lines += [
        "",
        f"flagged: precision {pf[0]:.2f} recall {pf[1]:.2f} f1 {pf[2]:.2f} "
        f"(tp {pf[3]} fp {pf[4]} fn {pf[5]})",
        f"benign:  precision {pb[0]:.2f} recall {pb[1]:.2f} f1 {pb[2]:.2f}",
        f"flagged-vs-benign macro F1: {macro_f1:.3f} (floor {MACRO_F1_FLOOR})",
        "",
        "errors:",
    ]
    for (sentence, _), predicted, actual, result in zip(
        LABELLED, predicted_sets, actual_sets, results, strict=True
    ):
        if bool(predicted) != bool(actual):
            top = max(result.scores, key=lambda c: result.scores[c])
            lines.append(
                f"  {'FP' if predicted else 'FN'} {sentence!r}: expected {sorted(actual) or 'benign'}, "
                f"top {top} {result.scores[top]:.2f}"
            )
    report = "\n".join(lines)
    print("\n" + report)
    (tmp_path / "text_quality_report.txt").write_text(report + "\n", encoding="utf-8")

    assert macro_f1 >= MACRO_F1_FLOOR, report
    # Idioms must not be flagged, whatever the aggregate says.
    for sentence, predicted in zip((s for s, _ in LABELLED), predicted_sets, strict=True):
        if sentence in (
            "The band absolutely killed it on stage last night.",
            "I'd murder a slice of pizza right now.",
        ):
            assert not predicted, f"{sentence!r} flagged as {predicted}"


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("i know where u live and im coming for u tonight 🔪", "violence"),
        ("k i l l  y o u r s e l f, nobody wants you", "self_harm"),
        ("#selling #xanax #percs dm for prices", "drugs"),
    ],
)
def test_obfuscated_and_hashtag_text_still_scores(
    moderator: TextModerator,
    default_bundle: PolicyBundle,
    default_policy: Policy,
    text_encoder: Encoder,
    text: str,
    category: str,
) -> None:
    [result] = moderator.moderate(
        [TextItem(id="x", text=text, source="caption")], default_bundle, text_encoder.encode
    )
    assert result.scores[category] >= default_policy.categories[category].thresholds.review, result.scores
