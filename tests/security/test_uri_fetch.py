"""http(s) media_uri fetching: off by default; when on, allowlisted schemes and hosts only,
non-public addresses refused before any connection, every redirect hop re-checked, byte and
time limits. Real HTTP(S) origins on 127.0.0.1 (loopback explicitly allowlisted where a test
fetches from them); nothing is ever sent to a non-loopback address: those cases are refused
by the address check, which the socket audit hook proves happens before any connect()."""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from gateway import errors
from gateway.config import GatewayConfig
from gateway.media.fetch import FetchPolicy, FetchTooSlow, address_problem, fetched_media
from modgate.banks.digests import ContentDigests
from modgate.v1 import moderation_pb2 as pb
from modgate.v1 import moderation_pb2_grpc as pb_grpc
from tests.security import hostile_media as hm
from tests.security.gateway_proc import running_gateway
from tests.security.http_origin import Body, Origin, Redirect, origin
from tests.security.pki import Pki

pytestmark = pytest.mark.timeout(120)

KiB = 1024
LOOPBACK = (ipaddress.ip_network("127.0.0.1/32"),)

# --- socket audit: which connect() and getaddrinfo() calls happened ------------------------------

_AUDIT: dict[str, list[Any] | None] = {"events": None}


def _audit(event: str, args: tuple[Any, ...]) -> None:
    events = _AUDIT["events"]
    if events is not None and event in ("socket.connect", "socket.getaddrinfo"):
        events.append((event, args[1] if event == "socket.connect" else args[0]))


sys.addaudithook(_audit)


class SocketAudit:
    def __enter__(self) -> list[Any]:
        self.events: list[Any] = []
        _AUDIT["events"] = self.events
        return self.events

    def __exit__(self, *_exc: object) -> None:
        _AUDIT["events"] = None


# --- helpers ----------------------------------------------------------------------------------


def policy(**overrides: Any) -> FetchPolicy:
    base: dict[str, Any] = {
        "enabled": True,
        "schemes": frozenset({"http", "https"}),
        "hosts": ("127.0.0.1", "localhost"),
        "allowed_networks": LOOPBACK,
        "max_redirects": 3,
        "max_bytes": 256 * KiB,
        "timeout_s": 3.0,
    }
    return FetchPolicy(**{**base, **overrides})


def fetch(uri: str, rules: FetchPolicy, deadline_s: float | None = None) -> tuple[bytes, Path]:
    async def run() -> tuple[bytes, Path]:
        async with fetched_media(uri, rules, deadline_s=deadline_s) as path:
            return path.read_bytes(), path

    return asyncio.run(run())


CLIP = hm.encode("mp4", audio="aac")


@pytest.fixture(scope="module")
def server() -> Iterator[Origin]:
    routes = {
        "/clip.mp4": Body(CLIP),
        "/to-clip": Redirect("/clip.mp4"),
        "/to-clip-absolute": Redirect("http://localhost:{port}/clip.mp4"),
        "/to-other-host": Redirect("http://media.example.net/clip.mp4"),
        "/to-private": Redirect("http://10.0.0.1/clip.mp4"),
        "/to-metadata": Redirect("http://169.254.169.254/latest/meta-data/", status=307),
        "/to-file": Redirect("file:///etc/passwd"),
        "/loop": Redirect("/loop"),
        "/big": Body(bytes(300 * KiB)),
        "/big-chunked": Body(bytes(300 * KiB), chunked=True),
        "/lying-length": Body(bytes(10), declared_length=10**12),
        "/gzip": Body(b"\x1f\x8b" + bytes(100), encoding="gzip"),
        "/slow": Body(bytes(64 * KiB), drip_s=0.1),
        "/empty": Body(b""),
    }
    with origin(routes) as running:
        # Absolute redirects need the port, known only now.
        routes["/to-clip-absolute"] = Redirect(f"http://localhost:{running.port}/clip.mp4")
        yield running


# --- policy and address rules (no network) --------------------------------------------------------


def test_fetching_is_off_by_default_and_https_only_when_enabled() -> None:
    rules = FetchPolicy.from_config(GatewayConfig())
    assert rules.enabled is False
    assert rules.schemes == frozenset({"https"})
    assert rules.hosts == () and rules.allowed_networks == ()
    with pytest.raises(errors.PermissionDenied, match="disabled"):
        fetch("https://cdn.example.com/clip.mp4", rules)


@pytest.mark.parametrize(
    ("address", "problem"),
    [
        ("127.0.0.1", "loopback"),
        ("127.255.0.9", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.31.0.1", "private"),
        ("192.168.0.1", "private"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("fd00:ec2::254", "private"),
        ("100.64.0.1", "non-public"),
        ("0.0.0.0", "unspecified"),
        ("224.0.0.251", "multicast"),
        ("240.0.0.1", "private"),
        ("::ffff:10.0.0.1", "private"),
        ("64:ff9b::7f00:1", "loopback"),
        ("192.0.2.10", "private"),
    ],
)
def test_non_public_addresses_are_refused(address: str, problem: str) -> None:
    found = address_problem(ipaddress.ip_address(address))
    assert found is not None and problem in found


@pytest.mark.parametrize("address", ["93.184.215.14", "8.8.8.8", "2606:4700:4700::1111"])
def test_public_addresses_pass(address: str) -> None:
    assert address_problem(ipaddress.ip_address(address)) is None


def test_allowed_networks_let_a_non_public_address_through() -> None:
    allowed = (ipaddress.ip_network("10.20.0.0/16"),)
    assert address_problem(ipaddress.ip_address("10.20.3.4"), allowed) is None
    assert address_problem(ipaddress.ip_address("10.21.3.4"), allowed) is not None
    assert address_problem(ipaddress.ip_address("::ffff:10.20.3.4"), allowed) is None


@pytest.mark.parametrize(
    ("uri", "host"),
    [
        ("http://10.0.0.1/clip.mp4", "10.0.0.1"),
        ("http://192.168.1.20:8080/clip.mp4", "192.168.1.20"),
        ("http://169.254.169.254/latest/meta-data/iam/", "169.254.169.254"),
        ("https://172.16.0.9/clip.mp4", "172.16.0.9"),
        ("http://[fd00:ec2::254]/latest/", "fd00:ec2::254"),
        ("http://[::ffff:10.0.0.1]/clip.mp4", "::ffff:10.0.0.1"),
        ("http://100.64.0.1/clip.mp4", "100.64.0.1"),
    ],
)
def test_private_literals_are_refused_before_any_connection_or_dns(uri: str, host: str) -> None:
    rules = policy(hosts=(host,), allowed_networks=())
    with SocketAudit() as events, pytest.raises(errors.PermissionDenied, match="address") as caught:
        fetch(uri, rules)
    assert caught.value.code == grpc.StatusCode.PERMISSION_DENIED
    assert events == [], events  # no connect(), and not even a DNS lookup for a literal


# --- against a real loopback origin ---------------------------------------------------------------


def test_fetch_from_an_allowlisted_origin(server: Origin) -> None:
    with SocketAudit() as events:
        data, path = fetch(server.url("/clip.mp4"), policy())
    assert data == CLIP
    assert not path.exists()  # the spool file lives only for the block
    connects = [args for event, args in events if event == "socket.connect"]
    assert connects and all(args[0] == "127.0.0.1" for args in connects)


def test_the_fetched_bytes_are_digested_while_they_arrive(server: Origin) -> None:
    """MD5 + SHA-256 for the gateway's exact-hash lookup, fed chunk by chunk (redirect included)."""
    digests = ContentDigests()

    async def run() -> bytes:
        async with fetched_media(server.url("/to-clip"), policy(), digests=digests) as path:
            return path.read_bytes()

    assert asyncio.run(run()) == CLIP
    assert (digests.md5, digests.sha256, digests.size) == (
        hashlib.md5(CLIP).hexdigest(),
        hashlib.sha256(CLIP).hexdigest(),
        len(CLIP),
    )


def test_loopback_is_refused_unless_its_network_is_allowed(server: Origin) -> None:
    before = server.connections
    with pytest.raises(errors.PermissionDenied, match="loopback"):
        fetch(server.url("/clip.mp4"), policy(allowed_networks=()))
    with pytest.raises(errors.PermissionDenied, match="loopback"):
        fetch(server.url("/clip.mp4", host="localhost"), policy(allowed_networks=()))
    assert server.connections == before


def test_scheme_and_host_allowlists(server: Origin) -> None:
    with pytest.raises(errors.PermissionDenied, match="http:// is not allowed"):
        fetch(server.url("/clip.mp4"), policy(schemes=frozenset({"https"})))
    with pytest.raises(errors.PermissionDenied, match="allowlist"):
        fetch(server.url("/clip.mp4"), policy(hosts=("cdn.example.com",)))
    with pytest.raises(errors.PermissionDenied, match="allowlist"):
        fetch(server.url("/clip.mp4", host="127.0.0.2"), policy())
    with pytest.raises(errors.BadMediaUri, match="credentials"):
        fetch(f"http://user:secret@127.0.0.1:{server.port}/clip.mp4", policy())
    wildcard = policy(hosts=("*.localhost",))
    with pytest.raises(errors.PermissionDenied, match="allowlist"):
        fetch(server.url("/clip.mp4", host="localhost"), wildcard)  # *.x matches subdomains only


def test_the_connection_goes_to_the_checked_address_with_the_name_in_host(server: Origin) -> None:
    data, _ = fetch(server.url("/clip.mp4", host="localhost"), policy())
    assert data == CLIP
    assert server.hosts[-1] == f"localhost:{server.port}"


def test_redirects_are_followed_only_to_allowed_places(server: Origin) -> None:
    assert fetch(server.url("/to-clip"), policy())[0] == CLIP
    assert fetch(server.url("/to-clip-absolute"), policy())[0] == CLIP
    cases = [
        ("/to-other-host", "redirect 1 .*allowlist"),
        ("/to-private", "redirect 1 .*private"),
        ("/to-metadata", "redirect 1 .*link-local"),
        ("/to-file", "redirect 1 .*scheme"),
    ]
    for path, pattern in cases:
        with SocketAudit() as events, pytest.raises(errors.PermissionDenied, match=pattern):
            fetch(server.url(path), policy(hosts=("127.0.0.1", "localhost", "10.0.0.1", "169.254.169.254")))
        assert all(args[0] == "127.0.0.1" for event, args in events if event == "socket.connect"), path
    with pytest.raises(errors.BadMediaUri, match="redirected more than 3 times"):
        fetch(server.url("/loop"), policy())
    with pytest.raises(errors.BadMediaUri, match="redirected more than 0 times"):
        fetch(server.url("/to-clip"), policy(max_redirects=0))


def test_byte_limit(server: Origin) -> None:
    for path in ("/big", "/big-chunked", "/lying-length"):
        with pytest.raises(errors.MediaTooLarge) as caught:
            fetch(server.url(path), policy())
        assert caught.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert caught.value.details["maximum"] == 256 * KiB
    assert len(fetch(server.url("/big"), policy(max_bytes=300 * KiB))[0]) == 300 * KiB


def test_time_limit_and_deadline(server: Origin) -> None:
    started = time.monotonic()
    with pytest.raises(FetchTooSlow) as caught:
        fetch(server.url("/slow"), policy(timeout_s=1.0))
    assert caught.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert time.monotonic() - started < 3.0
    started = time.monotonic()
    with pytest.raises(errors.DeadlineExceeded):
        fetch(server.url("/slow"), policy(timeout_s=10.0), deadline_s=0.5)
    assert time.monotonic() - started < 2.5


def test_bad_responses_are_invalid_argument(server: Origin) -> None:
    with pytest.raises(errors.BadMediaUri, match="HTTP 404"):
        fetch(server.url("/missing.mp4"), policy())
    with pytest.raises(errors.BadMediaUri, match="Content-Encoding 'gzip'"):
        fetch(server.url("/gzip"), policy())
    with pytest.raises(errors.EmptyMedia):
        fetch(server.url("/empty"), policy())
    with pytest.raises(errors.BadMediaUri, match="failed"):
        fetch(f"http://127.0.0.1:{_closed_port()}/clip.mp4", policy())


def _closed_port() -> int:
    from modgate.tools.stack import free_port

    return free_port()


def test_https_verifies_the_name_while_connecting_to_the_checked_address(pki: Pki) -> None:
    with origin({"/clip.mp4": Body(CLIP)}, tls=(pki.origin_cert, pki.origin_key)) as tls_server:
        rules = policy(ca_file=pki.ca_cert)
        assert fetch(tls_server.url("/clip.mp4", host="localhost"), rules)[0] == CLIP
        # The certificate names localhost only: asking for the IP must fail verification.
        with pytest.raises(errors.BadMediaUri, match=r"CERTIFICATE_VERIFY_FAILED|certificate"):
            fetch(tls_server.url("/clip.mp4"), rules)
        # Without the test CA the origin is not trusted.
        with pytest.raises(errors.BadMediaUri, match=r"CERTIFICATE_VERIFY_FAILED|certificate"):
            fetch(tls_server.url("/clip.mp4", host="localhost"), policy())


# --- through the real gateway process --------------------------------------------------------------


def _gateway_env(spool: Path, **extra: str) -> dict[str, str]:
    return {
        "MODGATE_GATEWAY_URI_FETCH_ENABLED": "true",
        "MODGATE_GATEWAY_URI_ALLOWLIST": "127.0.0.1,localhost",
        "MODGATE_GATEWAY_URI_FETCH_SCHEMES": "http",
        "MODGATE_GATEWAY_URI_FETCH_MAX_BYTES": str(256 * KiB),
        "MODGATE_GATEWAY_URI_FETCH_TIMEOUT_S": "1.5",
        "MODGATE_GATEWAY_SPOOL_DIR": str(spool),
        **extra,
    }


def _status(stub: pb_grpc.ModerationStub, uri: str) -> tuple[str, str]:
    try:
        stub.Moderate(pb.ModerateRequest(media_uri=uri), timeout=20)
    except grpc.RpcError as error:
        return error.code().name, error.details() or ""  # type: ignore[attr-defined]
    return "OK", ""


def test_gateway_fetches_from_an_allowlisted_loopback_origin(server: Origin, tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    env = _gateway_env(spool, MODGATE_GATEWAY_URI_FETCH_ALLOWED_NETWORKS="127.0.0.1/32")
    with running_gateway(tmp_path, env, name="fetch-on") as gateway, gateway.channel() as channel:
        stub = pb_grpc.ModerationStub(channel)
        verdict = stub.Moderate(pb.ModerateRequest(media_uri=server.url("/to-clip")), timeout=20)
        assert verdict.media.has_video and verdict.media.has_audio
        assert "fetch" in [t.stage for t in verdict.timings]
        assert _status(stub, server.url("/to-other-host"))[0] == "PERMISSION_DENIED"
        assert _status(stub, server.url("/to-private"))[0] == "PERMISSION_DENIED"
        assert _status(stub, server.url("/big"))[0] == "RESOURCE_EXHAUSTED"
        started = time.monotonic()
        assert _status(stub, server.url("/slow")) == (
            "RESOURCE_EXHAUSTED",
            "fetching media_uri took longer than 1.5 s; serve it faster or send the media bytes",
        )
        assert time.monotonic() - started < 5
        assert _status(stub, server.url("/missing.mp4"))[0] == "INVALID_ARGUMENT"
    assert list(spool.iterdir()) == []  # every spooled fetch was deleted


def test_gateway_refuses_loopback_when_it_is_not_allowlisted(server: Origin, tmp_path: Path) -> None:
    before = server.connections
    with (
        running_gateway(tmp_path, _gateway_env(tmp_path), name="fetch-no-loopback") as gateway,
        gateway.channel() as channel,
    ):
        stub = pb_grpc.ModerationStub(channel)
        for uri in (server.url("/clip.mp4"), server.url("/clip.mp4", host="localhost")):
            code, details = _status(stub, uri)
            assert code == "PERMISSION_DENIED" and "loopback" in details, details
    assert server.connections == before
