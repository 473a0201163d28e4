"""A throwaway PostgreSQL server for tests and benchmarks: initdb + pg_ctl on a temp dir.

:class:`TemporaryPostgres` runs a real server (the Debian ``postgresql`` package's binaries) on
127.0.0.1 and a free port, its data directory, log and unix socket inside one temp dir::

    with TemporaryPostgres() as pg:
        engine = sqlalchemy.create_engine(pg.url)   # postgresql+psycopg://postgres@127.0.0.1:PORT/modgate
        pg.stop()    # fast shutdown: the store is down
        pg.start()   # same data directory, same port: the store is back, rows kept
        pg.kill()    # SIGKILL the postmaster and its backends: a crash (the next start recovers)

Authentication is ``trust`` for the superuser ``postgres`` (nothing but this machine can reach
127.0.0.1). initdb refuses to run as root, so as root every server command runs as the
``postgres`` user (``runuser -u postgres --``) and the temp dir is chowned to it. The server
keeps fsync on: what a test measures is what a real disk costs. The dir is removed by
:meth:`TemporaryPostgres.close` (also on leaving the ``with`` block and at interpreter exit).
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

import psutil
import psycopg
from psycopg import sql

from modgate.ports import HOST

SUPERUSER = "postgres"
OS_USER = "postgres"  # who runs the server when we are root (created by Debian's postgresql package)
DEBIAN_BIN_GLOB = "/usr/lib/postgresql/*/bin"
INSTALL_HINT = "install Debian postgresql: apt-get install postgresql"
LOG_TAIL_LINES = 40
PORT_ATTEMPTS = 3  # a free port can be taken between choosing it and the server binding it


class PostgresNotInstalled(RuntimeError):
    """initdb / pg_ctl are neither on PATH nor under /usr/lib/postgresql/*/bin."""


class PostgresServerError(RuntimeError):
    """initdb, a start or a stop failed; the message carries the server log's tail."""


def find_pg_bin_dir() -> Path:
    """The directory holding initdb and pg_ctl: PATH first, else the newest Debian version."""
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb and pg_ctl:
        # Debian links /usr/local/bin tools into /usr/lib/postgresql/N/bin: use the real dir,
        # where the `postgres` binary that pg_ctl starts lives too.
        return Path(pg_ctl).resolve().parent
    candidates = [Path(p) for p in glob.glob(DEBIAN_BIN_GLOB) if (Path(p) / "initdb").exists()]
    if not candidates:
        raise PostgresNotInstalled(
            f"PostgreSQL is not installed (no initdb/pg_ctl on PATH or under {DEBIAN_BIN_GLOB}): "
            + INSTALL_HINT
        )
    return max(candidates, key=_version_key)


def _version_key(bin_dir: Path) -> tuple[int, ...]:
    # /usr/lib/postgresql/15/bin -> (15,); "9.6" -> (9, 6); newest sorts last.
    return tuple(int(part) for part in re.findall(r"\d+", bin_dir.parent.name)) or (0,)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _alive(pid: int) -> bool:
    """True while the process runs; a zombie (dead, not yet reaped by its new parent) is gone."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


class TemporaryPostgres:
    """A PostgreSQL server on 127.0.0.1 and a free port, in a temp dir of its own.

    ``database`` is created on the first start; :attr:`url` points at it. :meth:`start` after
    :meth:`stop` or :meth:`kill` reuses the data directory and the port, so URLs handed out
    stay valid and committed rows are still there.
    """

    def __init__(
        self,
        *,
        database: str = "modgate",
        base_dir: Path | None = None,
        bin_dir: Path | None = None,
        start_timeout_s: float = 60.0,
    ) -> None:
        self.bin_dir = bin_dir or find_pg_bin_dir()
        self.database = database
        self.start_timeout_s = start_timeout_s
        self._as_root = os.geteuid() == 0
        self.root = Path(tempfile.mkdtemp(prefix="modgate-pg-", dir=base_dir))
        self.data_dir = self.root / "data"
        self.socket_dir = self.root / "socket"
        self.log_path = self.root / "server.log"
        self.port = _free_port()
        self._closed = False
        atexit.register(self.close)
        if self._as_root:
            try:
                self._hand_to_os_user()
            except BaseException:
                self.close()
                raise

    # --- addresses ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """SQLAlchemy URL of :attr:`database` (psycopg 3 driver)."""
        return self.url_for(self.database)

    def url_for(self, database: str) -> str:
        return f"postgresql+psycopg://{SUPERUSER}@{HOST}:{self.port}/{database}"

    def conninfo(self, database: str = "postgres") -> str:
        """libpq connection string (for psycopg.connect) of one database on this server."""
        return f"host={HOST} port={self.port} user={SUPERUSER} dbname={database} connect_timeout=5"

    # --- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> TemporaryPostgres:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def pid(self) -> int | None:
        """The postmaster's pid while it runs, else None."""
        pid_file = self.data_dir / "postmaster.pid"
        try:
            pid = int(pid_file.read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None
        return pid if _alive(pid) else None

    @property
    def running(self) -> bool:
        return self.pid is not None

    def start(self) -> None:
        """Start the server (initdb and the database on the first start); returns once it
        accepts connections. Raises PostgresServerError with the server log's tail."""
        if self._closed:
            raise RuntimeError(f"this TemporaryPostgres ({self.root}) was closed; make a new one")
        if self.running:
            return
        first = not (self.data_dir / "PG_VERSION").exists()
        if first:
            self._initdb()
        attempts = PORT_ATTEMPTS if first else 1
        for attempt in range(1, attempts + 1):
            failed = self._pg_ctl_start()
            if failed is None:
                break
            output, log = failed
            if attempt == attempts or not _port_taken(log):
                raise PostgresServerError(self._failure("the server did not start", output))
            self.port = _free_port()  # only before anyone got a URL with the old port
            self._write_conf()
        self._wait_accepting()
        if first:
            self.create_database(self.database)

    def stop(self) -> None:
        """Fast shutdown (open transactions are rolled back, clients disconnected)."""
        if not self.running:
            return
        timeout = str(int(self.start_timeout_s))
        proc = self._run_pg(["pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "-t", timeout, "stop"])
        if proc.returncode != 0 and self.running:
            raise PostgresServerError(self._failure("pg_ctl stop failed", proc.stdout + proc.stderr))

    def kill(self) -> None:
        """SIGKILL the postmaster and its backends, as a crash would; start() recovers."""
        pid = self.pid
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            # pg_ctl starts the postmaster in a session of its own; backends are in its group.
            if os.getpgid(pid) == pid:
                os.killpg(pid, signal.SIGKILL)
            else:
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        if _alive(pid):
            raise PostgresServerError(f"the postmaster (pid {pid}) survived SIGKILL for 10 s")
        self._remove_stale_locks()

    def close(self) -> None:
        """Stop the server (kill it if a fast shutdown fails) and remove the temp dir."""
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self.close)
        try:
            self.stop()
        except PostgresServerError:
            self.kill()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    # --- databases ---------------------------------------------------------------------------

    def create_database(self, name: str) -> None:
        with psycopg.connect(self.conninfo(), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))

    def drop_database(self, name: str) -> None:
        """Drop it even while a test's pool still holds connections to it (WITH FORCE)."""
        with psycopg.connect(self.conninfo(), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    # --- internals ---------------------------------------------------------------------------

    def _hand_to_os_user(self) -> None:
        try:
            user = pwd.getpwnam(OS_USER)
        except KeyError:
            raise PostgresNotInstalled(
                f"running as root needs the {OS_USER!r} user to run the server (initdb refuses root); "
                f"it comes with the package: {INSTALL_HINT}"
            ) from None
        os.chown(self.root, user.pw_uid, user.pw_gid)
        # The postgres user must reach the temp dir through its parents (a 0700 parent owned
        # by root would block it): say so now rather than as an initdb permission error.
        probe = self._run_pg(["test", "-w", str(self.root)], bin_dir=False)
        if probe.returncode != 0:
            raise PostgresServerError(
                f"the {OS_USER!r} user cannot write {self.root}: pass base_dir= a directory it can reach"
            )

    def _run_pg(self, argv: list[str], *, bin_dir: bool = True) -> subprocess.CompletedProcess[str]:
        command = [str(self.bin_dir / argv[0]), *argv[1:]] if bin_dir else argv
        if self._as_root:
            command = ["runuser", "-u", OS_USER, "--", *command]
        return subprocess.run(
            command, capture_output=True, text=True, timeout=self.start_timeout_s + 30, check=False
        )

    def _initdb(self) -> None:
        # --no-sync: only initdb's own files skip fsync (a temp cluster); the server keeps it.
        argv = ["initdb", "-D", str(self.data_dir), "-U", SUPERUSER, "-A", "trust", "-E", "UTF8"]
        proc = self._run_pg([*argv, "--locale=C", "--no-sync", "--no-instructions"])
        if proc.returncode != 0:
            raise PostgresServerError(f"initdb failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
        self.socket_dir.mkdir(mode=0o700)
        self._own(self.socket_dir)
        self._write_conf()

    def _write_conf(self) -> None:
        # postgresql.auto.conf overrides postgresql.conf and is ours to rewrite on a port change.
        settings = {
            "listen_addresses": HOST,
            "port": str(self.port),
            "unix_socket_directories": str(self.socket_dir),
            "max_connections": "200",
        }
        text = "".join(f"{key} = '{value}'\n" for key, value in settings.items())
        conf = self.data_dir / "postgresql.auto.conf"
        conf.write_text(text)
        self._own(conf)

    def _own(self, path: Path) -> None:
        """Files we create for the server belong to the user it runs as."""
        if self._as_root:
            user = pwd.getpwnam(OS_USER)
            os.chown(path, user.pw_uid, user.pw_gid)

    def _pg_ctl_start(self) -> tuple[str, str] | None:
        """None once the server runs, else (what pg_ctl said, what this start logged)."""
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        argv = ["pg_ctl", "-D", str(self.data_dir), "-l", str(self.log_path), "-w"]
        proc = self._run_pg([*argv, "-t", str(int(self.start_timeout_s)), "start"])
        if proc.returncode == 0:
            return None
        return proc.stdout + proc.stderr, self._log_since(offset)

    def _wait_accepting(self) -> None:
        deadline = time.monotonic() + self.start_timeout_s
        while True:
            try:
                with psycopg.connect(self.conninfo()) as conn:
                    conn.execute("SELECT 1")
                return
            except psycopg.OperationalError as exc:
                if time.monotonic() > deadline:
                    failure = self._failure("the server does not accept connections", str(exc))
                    raise PostgresServerError(failure) from exc
                time.sleep(0.05)

    def _remove_stale_locks(self) -> None:
        # A killed postmaster that is still a zombie (its new parent has not reaped it) looks
        # alive to the next server's lock check, which would refuse to start.
        for lock in (self.data_dir / "postmaster.pid", *self.socket_dir.glob(".s.PGSQL.*.lock")):
            lock.unlink(missing_ok=True)

    def _log_since(self, offset: int) -> str:
        try:
            with self.log_path.open("rb") as log:
                log.seek(offset)
                return log.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def _failure(self, what: str, detail: str) -> str:
        tail = "\n".join(self._log_since(0).splitlines()[-LOG_TAIL_LINES:])
        return f"PostgreSQL in {self.root}: {what}.\n{detail.strip()}\n--- {self.log_path} (tail) ---\n{tail}"


def _port_taken(output: str) -> bool:
    return "could not bind" in output or "Address already in use" in output
