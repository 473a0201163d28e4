"""Opening the store's database: the engine for a URL, and its schema brought to the head
migration before first use.

SQLite (the default: one file under MODGATE_HOME, nothing to run) is put in WAL mode, so
readers (`modgate verdicts`, replay) never block the gateway's writes, with a busy timeout
for the moments two writers meet. PostgreSQL URLs use psycopg 3 with a connect timeout, so a
down server costs a request seconds, not minutes. Migrations take a lock (an advisory lock on
PostgreSQL, a file lock next to a SQLite file): two gateways starting together migrate once.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from modgate.store.config import StoreSettings

MIGRATIONS = Path(__file__).parent / "migrations"
# pg_advisory_lock key of the store's migrations ("mgst" in ASCII).
PG_MIGRATION_LOCK = 0x6D677374
SQLITE_BUSY_TIMEOUT_MS = 5000


class StoreError(RuntimeError):
    """The store cannot be used: unreachable, misconfigured, or its schema is newer than this code."""


def normalized_url(url: str) -> str:
    """postgresql:// and postgres:// mean psycopg 3 (the driver installed), not psycopg2."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def sqlite_path(url: str) -> Path | None:
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database)


def _compact_json(value: object) -> str:
    return json.dumps(value, separators=(",", ":"))


def create_engine(settings: StoreSettings) -> sa.Engine:
    url = normalized_url(settings.url)
    path = sqlite_path(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(
            url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}, json_serializer=_compact_json
        )
        synchronous = settings.sqlite_synchronous.value

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA synchronous={synchronous}")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cursor.close()

        return engine
    if url.startswith("postgresql"):
        return sa.create_engine(
            url,
            pool_size=settings.pool_size,
            max_overflow=settings.pool_size,
            pool_pre_ping=True,
            json_serializer=_compact_json,
            connect_args={"connect_timeout": max(1, round(settings.connect_timeout_s))},
        )
    raise StoreError(
        f"unsupported MODGATE_STORE_URL {sa.engine.make_url(url).render_as_string(hide_password=True)!r}: "
        "use sqlite:///PATH or postgresql://USER:PASSWORD@HOST/DB"
    )


def _alembic_config(connection: sa.Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head


@contextlib.contextmanager
def _migration_lock(engine: sa.Engine, connection: sa.Connection) -> Iterator[None]:
    if engine.dialect.name == "postgresql":
        connection.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": PG_MIGRATION_LOCK})
        connection.commit()
        try:
            yield
        finally:
            connection.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": PG_MIGRATION_LOCK})
            connection.commit()
        return
    path = sqlite_path(str(engine.url))
    if path is None:
        yield
        return
    with open(path.with_name(path.name + ".migrate-lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def migrate(engine: sa.Engine) -> str:
    """Bring the schema to the head revision; returns it. A database at a revision this code
    does not know (a newer modgate migrated it) is refused rather than written to."""
    head = head_revision()
    with engine.connect() as connection, _migration_lock(engine, connection):
        current = MigrationContext.configure(connection).get_current_revision()
        if current == head:
            return head
        known = {
            s.revision for s in ScriptDirectory.from_config(_alembic_config(connection)).walk_revisions()
        }
        if current is not None and current not in known:
            raise StoreError(
                f"the verdict store is at schema revision {current}, unknown to this modgate (head {head}): "
                "it was migrated by a newer version; run that version or point MODGATE_STORE_URL elsewhere"
            )
        command.upgrade(_alembic_config(connection), "head")
        connection.commit()
    return head
