"""The start-time check: every bank a policy names must exist in the bank directory.

The gateway and the vision service call it before serving (a policy acting on a bank that is
not there would silently match nothing), and fail the start with the message.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from modgate.banks.store import BankStore
from modgate.policy import Policy, PolicyError, load_policies


class UnknownBankError(PolicyError):
    """A policy names a bank the bank directory does not hold."""


def check_policy_banks(policies: Iterable[Policy], bank_dir: Path) -> None:
    """Raise UnknownBankError naming each policy, its missing banks and how to fix it."""
    held = set(BankStore(bank_dir).names())
    problems = []
    for policy in policies:
        missing = sorted(set(policy.banks) - held)
        if missing:
            problems.append(
                f"policy {policy.name!r} (version {policy.version}) names bank(s) {', '.join(missing)}"
            )
    if problems:
        raise UnknownBankError(
            f"{'; '.join(problems)}, which the bank directory {bank_dir} does not hold "
            f"(it holds: {', '.join(sorted(held)) or 'no banks'}). Create each with "
            "`modgate bank add BANK FILE --category CATEGORY` or `modgate bank import BANK LIST`, "
            "point MODGATE_BANK_DIR at the directory that has them, or remove them from the policy's banks:"
        )


def check_policy_dir_banks(policy_dir: Path, bank_dir: Path) -> None:
    """check_policy_banks for every policy in a policy directory."""
    check_policy_banks(load_policies(policy_dir).values(), bank_dir)
