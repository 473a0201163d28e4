"""Until the shared PostgreSQL fixture lands: store_url on SQLite only."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'verdicts.db'}"
