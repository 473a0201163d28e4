"""Shared fixtures for every test package (keep this small and general)."""

from __future__ import annotations

import hashlib
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from modgate.tools.mediagen import Generated, MediaSpec, generate

# postgres_server and store_url: a real PostgreSQL server and a fresh store database per test.
pytest_plugins = ["tests.store_fixtures"]


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where generated test media lives for the session."""
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def make_media(media_dir: Path) -> Callable[[MediaSpec], Generated]:
    """make_media(spec) -> Generated: encodes `spec` once per session and reuses the file."""
    cache: dict[MediaSpec, Generated] = {}

    def make(spec: MediaSpec) -> Generated:
        if spec not in cache:
            digest = hashlib.sha256(repr(spec).encode()).hexdigest()[:12]
            cache[spec] = generate(spec, media_dir / f"{digest}.{spec.container}")
        return cache[spec]

    return make


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def free_port() -> Callable[[], int]:
    """free_port() -> a TCP port on 127.0.0.1 that the OS just reported free."""
    return _free_port


@pytest.fixture(scope="module", autouse=True)
def _verdict_store_per_module(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Every test module's gateways keep verdicts in a store of its own (MODGATE_STORE_URL and
    MODGATE_STORE_SPOOL_DIR in the environment the processes it starts inherit), never in
    ~/.modgate: a request_id one module uses is never answered from another module's store.
    Autouse at module scope, so it is in place before the module's own fixtures start gateways."""
    directory = tmp_path_factory.mktemp("verdict-store")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MODGATE_STORE_URL", f"sqlite:///{directory / 'verdicts.db'}")
        patch.setenv("MODGATE_STORE_SPOOL_DIR", str(directory / "spool"))
        yield directory


@pytest.fixture(scope="session", autouse=True)
def _verdict_store_per_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The same for gateways that session-scoped fixtures start (before any module's store)."""
    directory = tmp_path_factory.mktemp("verdict-store-session")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MODGATE_STORE_URL", f"sqlite:///{directory / 'verdicts.db'}")
        patch.setenv("MODGATE_STORE_SPOOL_DIR", str(directory / "spool"))
        yield directory
