"""The verdict store fixtures (tests/store_fixtures.py): store_url is an empty database of the
backend its id names, one per test, and a PostgreSQL one is dropped after the test."""

from __future__ import annotations

import psycopg
import pytest
import sqlalchemy

from modgate.tools.pgserver import TemporaryPostgres
from tests.store_fixtures import fresh_postgres_database


def test_store_url_is_an_empty_writable_database_of_its_backend(
    store_url: str, request: pytest.FixtureRequest
) -> None:
    backend = request.node.callspec.params["store_url"]
    assert sqlalchemy.make_url(store_url).get_backend_name() == backend
    engine = sqlalchemy.create_engine(store_url)
    try:
        assert sqlalchemy.inspect(engine).get_table_names() == []
        with engine.begin() as conn:
            conn.execute(sqlalchemy.text("CREATE TABLE probe (x integer)"))
            conn.execute(sqlalchemy.text("INSERT INTO probe VALUES (1)"))
        with engine.connect() as conn:
            assert conn.execute(sqlalchemy.text("SELECT x FROM probe")).scalar_one() == 1
    finally:
        engine.dispose()
    if backend == "postgresql":
        assert sqlalchemy.make_url(store_url).drivername == "postgresql+psycopg"


def test_a_fresh_postgres_database_is_dropped_after_its_test(postgres_server: TemporaryPostgres) -> None:
    def databases() -> set[str]:
        with psycopg.connect(postgres_server.conninfo()) as conn:
            return {r[0] for r in conn.execute("SELECT datname FROM pg_database")}

    with (
        fresh_postgres_database(postgres_server) as first,
        fresh_postgres_database(postgres_server) as second,
    ):
        names = {sqlalchemy.make_url(url).database for url in (first, second)}
        assert len(names) == 2 and names <= databases()
        left_open = psycopg.connect(postgres_server.conninfo(sqlalchemy.make_url(first).database or ""))
    assert not names & databases()
    left_open.close()
