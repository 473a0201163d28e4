"""Shared fixtures for every test package (keep this small and general)."""

from __future__ import annotations

import hashlib
import socket
from collections.abc import Callable
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
