"""Verdict store fixtures (a pytest plugin, loaded by tests/conftest.py): one real PostgreSQL
server for the whole run and a fresh, empty database per test, on SQLite and PostgreSQL alike.

    def test_a_verdict_survives_a_reopen(store_url: str) -> None:   # runs as [sqlite] and [postgresql]
        settings = StoreSettings(url=store_url)
        ...

- ``store_url``: a SQLAlchemy URL of an empty database, parametrized over STORE_BACKENDS, so the
  same test code runs on both backends (ids ``[sqlite]`` / ``[postgresql]``; select one with
  ``-k sqlite``). SQLite: ``sqlite:////<tmp_path>/verdicts.db`` (the file does not exist yet).
  PostgreSQL: ``postgresql+psycopg://postgres@127.0.0.1:PORT/t_<hex>``, a database created on
  the session server for this test and dropped after it (WITH FORCE: pools a test left open do
  not block the drop). A [sqlite]-only run never starts PostgreSQL.
- ``postgres_server``: the session's :class:`~modgate.tools.pgserver.TemporaryPostgres`,
  started on first use (initdb + pg_ctl, about 2 s) and removed at the end of the run. Other
  tests share it: a test that needs the store *down* (stop/kill, then start) makes its own
  TemporaryPostgres instead of stopping this one.

PostgreSQL missing fails these tests (it does not skip them): `make test` installs it
(Makefile APT_PACKAGES) and the acceptance criteria need both backends.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from modgate.tools.pgserver import PostgresNotInstalled, TemporaryPostgres

STORE_BACKENDS = ("sqlite", "postgresql")


@contextlib.contextmanager
def fresh_postgres_database(server: TemporaryPostgres) -> Iterator[str]:
    """A database of its own on `server` while the block runs; its URL. Dropped on exit."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    server.create_database(name)
    try:
        yield server.url_for(name)
    finally:
        server.drop_database(name)


def sqlite_url(directory: Path) -> str:
    return f"sqlite:///{directory / 'verdicts.db'}"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[TemporaryPostgres]:
    """One PostgreSQL server for the run (see the module docstring); do not stop it."""
    try:
        server = TemporaryPostgres()
    except PostgresNotInstalled as exc:
        pytest.fail(str(exc), pytrace=False)
    with server:
        yield server


@pytest.fixture(params=STORE_BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty store database per test, once per backend (see the module docstring)."""
    if request.param == "sqlite":
        yield sqlite_url(tmp_path)
        return
    server: TemporaryPostgres = request.getfixturevalue("postgres_server")
    if not server.running:
        pytest.fail(
            "the session's postgres_server is not running: an earlier test stopped it "
            "(a test that stops PostgreSQL must use a TemporaryPostgres of its own)"
        )
    with fresh_postgres_database(server) as url:
        yield url
