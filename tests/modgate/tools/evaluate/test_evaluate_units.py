"""modgate eval's parts without processes: datasets, figures, paired comparison, thresholds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from modgate.policy import DEFAULT_POLICY_DIR, load_policies
from modgate.tools.evaluate.compare import compare
from modgate.tools.evaluate.dataset import DatasetError, EvalItem, load_dataset
from modgate.tools.evaluate.metrics import figures
from modgate.tools.evaluate.runner import ScoredItem
from modgate.tools.evaluate.thresholds import held_out_figures, policy_diff, suggest, wilson_low

CATEGORIES = ["violence", "hate"]


def scored(item_id: str, label: str, decision: str, **scores: float) -> ScoredItem:
    return ScoredItem(item=EvalItem(id=item_id, label=label, text="x"), decision=decision, scores=scores)


def test_datasets_in_both_formats_and_their_errors(tmp_path: Path) -> None:
    (tmp_path / "clip.mp4").write_bytes(b"\0")
    jsonl = tmp_path / "set.jsonl"
    jsonl.write_text(
        json.dumps({"id": "a", "text": "hi", "label": "benign", "decision": "allow"})
        + "\n"
        + json.dumps({"media": "clip.mp4", "label": "violence", "hashtags": ["x"]})
        + "\n",
        encoding="utf-8",
    )
    items = load_dataset(jsonl, {"violence"})
    assert [(i.id, i.kind, i.expected_decision) for i in items] == [
        ("a", "text", "ALLOW"),
        ("line-2", "media", ""),
    ]
    tsv = tmp_path / "set.tsv"
    tsv.write_text("violence\tI will hurt you\nbenign\tnice day\n", encoding="utf-8")
    assert [(i.label, i.text) for i in load_dataset(tsv, {"violence"})] == [
        ("violence", "I will hurt you"),
        ("benign", "nice day"),
    ]
    for line, problem in (
        ('{"text": "x", "label": "gore"}', "label 'gore' is not"),
        ('{"label": "benign"}', "needs 'text' or 'media'"),
        ('{"media": "missing.mp4", "label": "benign"}', "does not exist"),
        ("not json", "not JSON"),
        ('{"text": "x", "label": "benign", "decision": "maybe"}', "is not ALLOW"),
    ):
        bad = tmp_path / "bad.jsonl"
        bad.write_text(line + "\n", encoding="utf-8")
        with pytest.raises(DatasetError, match=problem) as error:
            load_dataset(bad, {"violence"})
        assert f"{bad}:1" in str(error.value)


def test_figures_count_flags_categories_and_errors() -> None:
    results = [
        scored("1", "violence", "BLOCK", violence=0.9, hate=0.1),
        scored("2", "violence", "REVIEW", violence=0.2, hate=0.6),  # flagged, wrong category
        scored("3", "hate", "ALLOW", violence=0.1, hate=0.3),  # missed
        scored("4", "benign", "REVIEW", violence=0.7, hate=0.0),  # false positive
        scored("5", "benign", "ALLOW", violence=0.0, hate=0.0),
        ScoredItem(
            item=EvalItem(id="6", label="hate", text="x"), decision="ERROR", error="UNAVAILABLE: down"
        ),
    ]
    f = figures(results, CATEGORIES)
    b = f.flagged_vs_benign
    assert (f.items, f.scored, f.errors) == (6, 5, 1)
    assert (b.tp, b.fp, b.fn, b.tn) == (2, 1, 1, 1)
    assert b.precision == pytest.approx(2 / 3) and b.recall == pytest.approx(2 / 3)
    assert f.right_category == pytest.approx(0.5)
    violence, hate = f.categories
    assert (violence.support, violence.predicted, violence.precision, violence.recall) == (2, 2, 0.5, 0.5)
    assert (hate.support, hate.predicted, hate.precision, hate.recall) == (1, 1, 0.0, 0.0)
    assert f.confusion["violence"] == {"benign": 0, "violence": 1, "hate": 1}
    assert f.confusion["benign"]["violence"] == 1 and f.error_messages == ["UNAVAILABLE: down"]


def _population(seed: int, n: int = 400, noise: float = 0.0) -> list[ScoredItem]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        label = ["benign", "violence", "hate"][i % 3]
        violence = rng.uniform(0.6, 1.0) if label == "violence" else rng.uniform(0.0, 0.7)
        hate = rng.uniform(0.6, 1.0) if label == "hate" else rng.uniform(0.0, 0.7)
        violence, hate = (
            min(1.0, violence + rng.uniform(-noise, noise)),
            min(1.0, hate + rng.uniform(-noise, noise)),
        )
        decision = "REVIEW" if max(violence, hate) >= 0.5 else "ALLOW"
        out.append(scored(f"item-{i}", label, decision, violence=violence, hate=hate))
    return out


def test_identical_variants_promote_with_zero_deltas_and_a_worse_one_rolls_back() -> None:
    stable = _population(1)
    same = compare(stable, list(stable), CATEGORIES, resamples=500)
    assert same.recommendation == "PROMOTE" and not same.changed
    assert all(d.delta == 0 and d.low == 0 and d.high == 0 for d in same.deltas)
    # The canary sees violence as benign on most violent items: its violence F1 falls.
    worse = [
        scored(r.item.id, r.item.label, "ALLOW", violence=0.1, hate=r.scores["hate"])
        if r.item.label == "violence" and int(r.item.id.split("-")[1]) % 4
        else r
        for r in stable
    ]
    result = compare(stable, worse, CATEGORIES, resamples=500)
    assert result.recommendation == "ROLLBACK" and result.worse_categories == ["violence"]
    violence = next(d for d in result.deltas if d.metric == "f1[violence]")
    assert violence.high < 0 and violence.low <= violence.delta <= violence.high
    assert len(result.changed) == sum(
        1 for a, b in zip(stable, worse, strict=True) if a.decision != b.decision
    )


def test_wilson_lower_bound_matches_published_values() -> None:
    # Wilson score interval, 95% two-sided (one-sided 0.975): 8/10 -> 0.4902 (Newcombe 1998, table I).
    assert wilson_low(8, 10, 0.975) == pytest.approx(0.4902, abs=1e-4)
    assert wilson_low(0, 0, 0.9) == 0.0


def test_suggested_thresholds_hold_their_precision_on_held_out_items() -> None:
    policy = load_policies()["default"]
    tune, held = _population(2, noise=0.15), _population(3, noise=0.15)
    suggestions = {s.category: s for s in suggest(tune, policy, target_precision=0.95, confidence=0.9)}
    assert suggestions["violence"].review is not None and suggestions["hate"].review is not None
    assert suggestions["drugs"].review is None and "no items" in suggestions["drugs"].note
    for figures_ in held_out_figures(held, list(suggestions.values())):
        assert figures_.precision >= 0.93, figures_  # the target, less sampling noise on 133 items
    policy_text = (DEFAULT_POLICY_DIR / "default.yaml").read_text(encoding="utf-8")
    diff = policy_diff(policy_text, policy, list(suggestions.values()), filename="default.yaml")
    assert f"+    thresholds: {{ review: {suggestions['violence'].review:g}," in diff
    assert f'+version: "{policy.version}-tuned"' in diff and "drugs" not in diff
