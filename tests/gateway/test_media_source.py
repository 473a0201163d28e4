"""media_uri resolution: file:// confined to the media root; http(s) off unless enabled."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from gateway import errors
from gateway.media.source import fetch_http_uri, resolve_file_uri, uri_scheme

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    media = tmp_path / "media"
    (media / "sub").mkdir(parents=True)
    (media / "sub" / "clip.mp4").write_bytes(b"x" * 100)
    (tmp_path / "secret.mp4").write_bytes(b"secret")
    (media / "escape.mp4").symlink_to(tmp_path / "secret.mp4")
    (media / "inside-link.mp4").symlink_to(media / "sub" / "clip.mp4")
    return media


def test_file_uri_under_root_resolves(root: Path) -> None:
    assert resolve_file_uri((root / "sub" / "clip.mp4").as_uri(), root, 1000) == root / "sub" / "clip.mp4"
    assert (
        resolve_file_uri(f"file://localhost{root}/inside-link.mp4", root, 1000) == root / "sub" / "clip.mp4"
    )


@pytest.mark.parametrize(
    ("uri_template", "error", "fragment"),
    [
        ("file://{root}/../secret.mp4", errors.BadMediaUri, "path traversal"),
        ("file://{root}/sub/%2E%2E/../secret.mp4", errors.BadMediaUri, "path traversal"),
        ("file://{root}/escape.mp4", errors.BadMediaUri, "outside"),
        ("file://{root}/sub", errors.BadMediaUri, "not a regular file"),
        ("file://{root}/nope.mp4", errors.BadMediaUri, "does not exist"),
        ("file://otherhost{root}/sub/clip.mp4", errors.BadMediaUri, "host"),
        ("file:relative.mp4", errors.BadMediaUri, "absolute"),
        ("file://{root}/sub/clip.mp4%00.txt", errors.BadMediaUri, "absolute"),
    ],
)
def test_file_uris_outside_the_root_are_rejected(
    root: Path, uri_template: str, error: type[errors.GatewayError], fragment: str
) -> None:
    with pytest.raises(error, match=fragment) as caught:
        resolve_file_uri(uri_template.format(root=root), root, 1000)
    assert caught.value.code.name == "INVALID_ARGUMENT"


def test_file_uri_limits_and_disabled_root(root: Path) -> None:
    with pytest.raises(errors.MediaTooLarge):
        resolve_file_uri((root / "sub" / "clip.mp4").as_uri(), root, 99)
    with pytest.raises(errors.PermissionDenied, match="MODGATE_GATEWAY_MEDIA_ROOT"):
        resolve_file_uri((root / "sub" / "clip.mp4").as_uri(), None, 1000)


def test_uri_schemes() -> None:
    assert [uri_scheme(u) for u in ("file:///a", "HTTP://h/a", "https://h/a")] == ["file", "http", "https"]
    for bad in ("ftp://h/a", "/plain/path.mp4", "data:video/mp4;base64,AAAA", "x" * 5000):
        with pytest.raises(errors.BadMediaUri):
            uri_scheme(bad)


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[str]:
    (tmp_path / "clip.mp4").write_bytes(b"v" * 5000)

    class Handler(SimpleHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/redirect":
                self.send_response(302)
                self.send_header("Location", "/clip.mp4")
                self.end_headers()
                return
            super().do_GET()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(tmp_path)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def fetch(
    uri: str, *, enabled: bool = True, allow: tuple[str, ...] = ("127.0.0.1",), max_bytes: int = 10_000
) -> bytes:
    return asyncio.run(
        fetch_http_uri(uri, enabled=enabled, allowlist=list(allow), max_bytes=max_bytes, timeout_s=5)
    )


def test_http_fetch_is_off_by_default_and_allowlisted(http_server: str) -> None:
    with pytest.raises(errors.PermissionDenied, match="disabled"):
        fetch(f"{http_server}/clip.mp4", enabled=False)
    with pytest.raises(errors.PermissionDenied, match="allowlist"):
        fetch(f"{http_server}/clip.mp4", allow=("cdn.example.com",))


def test_http_fetch_when_enabled(http_server: str) -> None:
    assert fetch(f"{http_server}/clip.mp4") == b"v" * 5000
    with pytest.raises(errors.MediaTooLarge):
        fetch(f"{http_server}/clip.mp4", max_bytes=4999)
    with pytest.raises(errors.BadMediaUri, match="HTTP 302"):
        fetch(f"{http_server}/redirect")  # redirects could leave the allowlist: not followed
    with pytest.raises(errors.BadMediaUri, match="HTTP 404"):
        fetch(f"{http_server}/missing.mp4")
