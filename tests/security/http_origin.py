"""A real HTTP(S) origin on 127.0.0.1 for the URI-fetch tests, run in a thread.

    with origin({"/clip.mp4": Body(data), "/r": Redirect("/clip.mp4")}) as server:
        server.url("/clip.mp4"), server.connections, server.hosts

Routes: Body (optionally drip-fed, chunked, or with a lying Content-Length / Content-Encoding),
Redirect (a Location header). Every accepted connection and every Host header is recorded, so
a test can prove the gateway never connected.
"""

from __future__ import annotations

import contextlib
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


@dataclass(frozen=True)
class Body:
    data: bytes
    chunked: bool = False  # no Content-Length
    declared_length: int | None = None  # a Content-Length that may lie
    encoding: str = ""  # Content-Encoding header
    drip_s: float = 0.0  # pause between 1 KiB pieces


@dataclass(frozen=True)
class Redirect:
    location: str
    status: int = 302


@dataclass
class Origin:
    server: ThreadingHTTPServer
    scheme: str
    connections: int = 0
    hosts: list[str] = field(default_factory=list)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"{self.scheme}://{host}:{self.port}{path}"


def _handler(routes: dict[str, Body | Redirect], state: Origin) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            state.connections += 1
            super().setup()

        def do_GET(self) -> None:
            state.hosts.append(self.headers.get("Host", ""))
            route = routes.get(self.path)
            if route is None:
                self.send_error(404)
                return
            if isinstance(route, Redirect):
                self.send_response(route.status)
                self.send_header("Location", route.location)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "video/mp4")
            if route.encoding:
                self.send_header("Content-Encoding", route.encoding)
            if route.chunked:
                self.send_header("Connection", "close")
            else:
                length = len(route.data) if route.declared_length is None else route.declared_length
                self.send_header("Content-Length", str(length))
            self.end_headers()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError, ssl.SSLError):
                step = 1024 if route.drip_s else 64 * 1024
                for offset in range(0, len(route.data), step):
                    self.wfile.write(route.data[offset : offset + step])
                    if route.drip_s:
                        self.wfile.flush()
                        time.sleep(route.drip_s)
            if route.chunked:
                self.close_connection = True

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@contextlib.contextmanager
def origin(routes: dict[str, Body | Redirect], *, tls: tuple[Path, Path] | None = None) -> Iterator[Origin]:
    """Serve `routes` on 127.0.0.1 (HTTPS with tls=(cert, key)) until the block exits."""
    state = Origin(server=None, scheme="https" if tls else "http")  # type: ignore[arg-type]
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(routes, state))
    server.daemon_threads = True
    if tls is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(tls[0]), str(tls[1]))
        server.socket = context.wrap_socket(server.socket, server_side=True)
    state.server = server
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
