"""Fixtures: a real SQLite verdict store filled with REVIEW items, a trace store holding the
items' trace, users in a tokens file, and the console as a real process over them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from modgate.store import StoreSettings, VerdictStore
from modgate.tools.tracestore import TraceStore
from tests.console_process import ConsoleProcess, write_tokens
from tests.modgate.console.client import Reviewer
from tests.modgate.console.records import TRACE_ID, Stored, fill_store
from tests.modgate.console.traces import export_request

USERS = {"alice": "reviewer", "bob": "reviewer", "root": "admin"}


@pytest.fixture
def store_path(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'verdicts.db'}"


@pytest.fixture
def store(store_path: str) -> Iterator[VerdictStore]:
    store = VerdictStore.open(StoreSettings(url=store_path))
    yield store
    store.close()


@pytest.fixture
def stored(store: VerdictStore) -> Stored:
    return fill_store(store)


@pytest.fixture
def tokens(tmp_path: Path) -> dict[str, str]:
    return write_tokens(tmp_path / "console-tokens.yaml", USERS)


@pytest.fixture
def trace_db(tmp_path: Path) -> Path:
    db = tmp_path / "traces.db"
    with TraceStore(db) as traces:
        traces.add_request(export_request(TRACE_ID))
    return db


@pytest.fixture
def console(
    tmp_path: Path, store_path: str, stored: Stored, tokens: dict[str, str], trace_db: Path
) -> Iterator[ConsoleProcess]:
    with ConsoleProcess(
        store_path, tmp_path / "console-tokens.yaml", log_path=tmp_path / "console.log", trace_db=trace_db
    ) as process:
        yield process


@pytest.fixture
def client(console: ConsoleProcess) -> Iterator[Callable[[], Reviewer]]:
    """client() -> a new logged-out browser-like client; .login(tokens[name]) logs it in."""
    clients: list[Reviewer] = []

    def make() -> Reviewer:
        clients.append(Reviewer(console.url))
        return clients[-1]

    yield make
    for client in clients:
        client.close()
