"""TemporaryPostgres runs a real PostgreSQL server: start, stop, start again with the data kept,
kill and recover, and clear errors when PostgreSQL is missing or cannot start."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import sqlalchemy

from modgate.tools import pgserver
from modgate.tools.pgserver import PostgresNotInstalled, PostgresServerError, TemporaryPostgres


@pytest.fixture
def pg() -> Iterator[TemporaryPostgres]:
    with TemporaryPostgres() as server:
        yield server


def select_one(server: TemporaryPostgres) -> int:
    with psycopg.connect(server.conninfo(server.database)) as conn:
        row = conn.execute("SELECT 1").fetchone()
    assert row is not None
    return int(row[0])


def rows(server: TemporaryPostgres) -> list[int]:
    with psycopg.connect(server.conninfo(server.database)) as conn:
        return [int(r[0]) for r in conn.execute("SELECT x FROM kept ORDER BY x")]


def test_server_serves_its_database_through_psycopg_and_sqlalchemy(pg: TemporaryPostgres) -> None:
    assert pg.url == f"postgresql+psycopg://postgres@127.0.0.1:{pg.port}/modgate"
    assert select_one(pg) == 1
    engine = sqlalchemy.create_engine(pg.url)
    try:
        with engine.connect() as conn:
            assert conn.execute(sqlalchemy.text("SELECT current_database()")).scalar_one() == "modgate"
            # fsync stays on: the costs a benchmark measures are a real disk's.
            assert conn.execute(sqlalchemy.text("SHOW fsync")).scalar_one() == "on"
            assert conn.execute(sqlalchemy.text("SHOW listen_addresses")).scalar_one() == "127.0.0.1"
    finally:
        engine.dispose()
    assert pg.socket_dir.is_relative_to(pg.root) and pg.data_dir.is_relative_to(pg.root)


def test_stopped_server_refuses_connections_and_keeps_its_data_when_started_again(
    pg: TemporaryPostgres,
) -> None:
    with psycopg.connect(pg.conninfo(pg.database), autocommit=True) as conn:
        conn.execute("CREATE TABLE kept (x int)")
        conn.execute("INSERT INTO kept VALUES (1), (2)")
    url = pg.url
    pg.stop()
    assert not pg.running and pg.pid is None
    with pytest.raises(psycopg.OperationalError):
        select_one(pg)
    pg.stop()  # stopping a stopped server is a no-op

    pg.start()
    assert pg.url == url, "a restart must keep the port: URLs handed out stay valid"
    assert pg.running and rows(pg) == [1, 2]


def test_killed_server_is_gone_at_once_and_recovers_committed_rows(pg: TemporaryPostgres) -> None:
    with psycopg.connect(pg.conninfo(pg.database), autocommit=True) as conn:
        conn.execute("CREATE TABLE kept (x int)")
        conn.execute("INSERT INTO kept VALUES (7)")
    open_client = psycopg.connect(pg.conninfo(pg.database))
    postmaster = pg.pid
    assert postmaster is not None
    pg.kill()
    assert not pg.running and not pgserver._alive(postmaster)
    with pytest.raises(psycopg.OperationalError):
        open_client.execute("SELECT 1")  # its backend died with the postmaster
    open_client.close()
    with pytest.raises(psycopg.OperationalError):
        select_one(pg)

    pg.start()  # crash recovery replays the WAL
    assert rows(pg) == [7]


def test_close_removes_everything_and_a_closed_server_cannot_start() -> None:
    server = TemporaryPostgres()
    server.start()
    root, postmaster = server.root, server.pid
    assert postmaster is not None
    server.close()
    assert not root.exists()
    assert not pgserver._alive(postmaster)
    server.close()  # idempotent
    with pytest.raises(RuntimeError, match="was closed"):
        server.start()


def test_databases_are_created_and_dropped_even_with_a_client_connected(pg: TemporaryPostgres) -> None:
    pg.create_database("other")
    held = psycopg.connect(pg.conninfo("other"))
    pg.drop_database("other")
    held.close()
    with psycopg.connect(pg.conninfo()) as conn:
        names = {r[0] for r in conn.execute("SELECT datname FROM pg_database")}
    assert "modgate" in names and "other" not in names


def test_a_port_taken_before_the_first_start_is_replaced(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        ports = iter([taken])
        real_free_port = pgserver._free_port
        monkeypatch.setattr(pgserver, "_free_port", lambda: next(ports, None) or real_free_port())
        with TemporaryPostgres() as server:
            assert server.port != taken
            assert select_one(server) == 1


def test_a_start_that_fails_shows_the_server_log() -> None:
    with TemporaryPostgres() as server:
        server.stop()
        with socket.socket() as squatter:
            # A restart keeps its port (handed-out URLs), so a squatter on it is an error.
            squatter.bind(("127.0.0.1", server.port))
            squatter.listen()
            with pytest.raises(PostgresServerError) as failure:
                server.start()
        message = str(failure.value)
        assert "the server did not start" in message
        assert str(server.log_path) in message
        assert "could not bind" in message or "Address already in use" in message
        server.start()
        assert select_one(server) == 1


def test_missing_postgresql_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(pgserver, "DEBIAN_BIN_GLOB", str(tmp_path / "postgresql" / "*" / "bin"))
    with pytest.raises(PostgresNotInstalled, match="apt-get install postgresql"):
        TemporaryPostgres()


def test_the_newest_debian_version_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for version in ("9.6", "13", "15"):
        bin_dir = tmp_path / "postgresql" / version / "bin"
        bin_dir.mkdir(parents=True)
        (bin_dir / "initdb").touch()
    (tmp_path / "postgresql" / "17" / "bin").mkdir(parents=True)  # a client-only install: no initdb
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setattr(pgserver, "DEBIAN_BIN_GLOB", str(tmp_path / "postgresql" / "*" / "bin"))
    assert pgserver.find_pg_bin_dir() == tmp_path / "postgresql" / "15" / "bin"
