"""The rules file: the packaged defaults, and bad files refused with what is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from modgate.tools.canary.rules import DEFAULT_RULES, Rules, RulesError, load_rules


def test_the_packaged_file_is_the_model_defaults() -> None:
    # Two places hold the defaults (the YAML people read and edit, the model's); they agree.
    assert load_rules() == Rules()
    assert load_rules(DEFAULT_RULES).flag_rate.max_change == 0.05


def test_a_partial_file_keeps_the_other_defaults(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"min_requests": 30, "flag_rate": {"max_change": 0.1}}))
    rules = load_rules(path)
    assert rules.min_requests == 30 and rules.flag_rate.max_change == 0.1
    assert rules.flag_rate.confidence == Rules().flag_rate.confidence
    assert rules.shadow == Rules().shadow


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"min_request": 30}, r"min_request: Extra inputs are not permitted"),
        ({"flag_rate": {"max_chnage": 0.1}}, r"flag_rate\.max_chnage: Extra inputs"),
        ({"flag_rate": {"max_change": 5}}, r"flag_rate\.max_change: Input should be less than 1"),
        ({"shadow": {"confidence": 0.3}}, r"shadow\.confidence: Input should be greater than 0\.5"),
        ({"latency": {"max_p95_ratio": "fast"}}, r"latency\.max_p95_ratio: Input should be a valid number"),
        ({"min_requests": 0}, r"min_requests: Input should be greater than or equal to 1"),
        (["min_requests", 3], r"expected a mapping of rules"),
    ],
)
def test_bad_rules_are_refused_naming_the_field(tmp_path: Path, document: object, message: str) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(document))
    with pytest.raises(RulesError, match=message) as caught:
        load_rules(path)
    assert str(path) in str(caught.value)


def test_a_missing_or_unparsable_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(RulesError, match="does not exist"):
        load_rules(tmp_path / "absent.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("flag_rate: [unclosed\n")
    with pytest.raises(RulesError, match="not valid YAML"):
        load_rules(broken)
