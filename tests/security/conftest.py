"""Fixtures shared by the security tests: a test PKI and a policy directory with two policies."""

from __future__ import annotations

from pathlib import Path

import pytest

from modgate.policy import DEFAULT_POLICY_DIR
from tests.security.pki import Pki, make_pki


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="session")
def two_policies(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A policy dir holding the default policy and a copy named "kids"."""
    directory = tmp_path_factory.mktemp("policies")
    text = (Path(DEFAULT_POLICY_DIR) / "default.yaml").read_text(encoding="utf-8")
    (directory / "default.yaml").write_text(text, encoding="utf-8")
    assert "\nname: default\n" in text
    (directory / "kids.yaml").write_text(
        text.replace("\nname: default\n", "\nname: kids\n"), encoding="utf-8"
    )
    return directory
