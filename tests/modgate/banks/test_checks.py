"""The policy's banks: section is validated, and an unknown bank fails the start clearly."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from modgate.banks.checks import UnknownBankError, check_policy_banks, check_policy_dir_banks
from modgate.banks.store import BankStore
from modgate.policy import BankAction, PolicyError, load_policies
from tests.modgate.banks.policies import policy_with_banks, policy_yaml_with_banks

REPO = Path(__file__).resolve().parents[3]


def test_bank_rules_default_to_hma_values() -> None:
    policy = policy_with_banks({"known": {"category": "violence"}})
    rule = policy.banks["known"]
    assert (rule.action, rule.pdq_max_distance, rule.pdq_min_quality) == (BankAction.BLOCK, 31, 50)
    assert (rule.video.min_fraction, rule.video.min_seconds, rule.video.require) == (0.25, 3.0, "any")
    assert rule.exact_short_circuit is True


@pytest.mark.parametrize(
    ("banks", "problem"),
    [
        ({"known": {"category": "arson"}}, "banks.known.category 'arson' is not a category"),
        ({"known": {"category": "violence", "action": "ALLOW"}}, "banks.known.action"),
        ({"known": {"category": "violence", "pdq_max_distance": 64}}, "banks.known.pdq_max_distance"),
        ({"Known Bank": {"category": "violence"}}, "banks.Known Bank"),
        (
            {"known": {"category": "violence", "video": {"min_fraction": 1.5}}},
            "banks.known.video.min_fraction",
        ),
        ({"known": {"category": "violence", "video": {"frames": 3}}}, "banks.known.video.frames"),
    ],
)
def test_bad_bank_rules_are_refused_naming_the_field(banks: dict, problem: str) -> None:
    with pytest.raises(PolicyError, match="invalid policy test") as caught:
        policy_with_banks(banks)
    assert problem in str(caught.value)


def test_unknown_bank_names_the_policy_the_bank_and_the_fix(tmp_path: Path) -> None:
    store = BankStore(tmp_path / "banks")
    store.create("present")
    policy = policy_with_banks({"present": {"category": "violence"}, "absent": {"category": "hate"}})
    with pytest.raises(UnknownBankError) as caught:
        check_policy_banks([policy], store.root)
    message = str(caught.value)
    assert "policy 'default'" in message and "bank(s) absent" in message
    assert f"bank directory {store.root} does not hold (it holds: present)" in message
    assert "modgate bank add BANK FILE --category CATEGORY" in message and "MODGATE_BANK_DIR" in message
    store.create("absent")
    check_policy_banks([policy], store.root)  # both present: no error


def test_the_shipped_policies_name_no_missing_bank(tmp_path: Path) -> None:
    check_policy_dir_banks(REPO / "modgate" / "policies", tmp_path / "no-banks-yet")
    assert load_policies()["default"].banks == {}


def test_vision_service_module_refuses_to_start_on_an_unknown_bank(tmp_path: Path) -> None:
    """The check the service runs at import (bentoml serve imports it first): exit 1, one clear line."""
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "banked.yaml").write_text(policy_yaml_with_banks({"gifct": {"category": "violence"}}))
    script = (
        "from pathlib import Path; from modgate.banks.config import BankSettings; "
        "from services.vision.hashing import check_banks_at_start; "
        f"check_banks_at_start(Path({str(policies)!r}), BankSettings(dir=Path({str(tmp_path / 'banks')!r})))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 1
    assert proc.stderr.startswith("modgate vision: policy 'banked' (version 1) names bank(s) gifct"), (
        proc.stderr
    )
    assert "Traceback" not in proc.stderr
