"""Fetching an http(s) media_uri without becoming a proxy into the gateway's network (SSRF).

Off unless MODGATE_GATEWAY_URI_FETCH_ENABLED. When on, every hop (the URI and each redirect)
must pass, before any connection is made:
  - scheme in MODGATE_GATEWAY_URI_FETCH_SCHEMES (default https only), no user:password@;
  - host in MODGATE_GATEWAY_URI_ALLOWLIST (exact names, or "*.example.com" for subdomains);
  - every address the host resolves to is public, unless it lies in
    MODGATE_GATEWAY_URI_FETCH_ALLOWED_NETWORKS. Refused otherwise: private, loopback,
    link-local (cloud metadata 169.254.169.254 included), shared (100.64/10), multicast,
    reserved, unspecified, and IPv4 hidden in IPv6 (::ffff:a.b.c.d, 64:ff9b::/96).
The connection then goes to the checked address itself (Host header and TLS SNI keep the
name), so a DNS answer that changes between check and connect (rebinding) cannot redirect it.
Redirects are followed by hand, at most MODGATE_GATEWAY_URI_FETCH_MAX_REDIRECTS, each hop
checked again. The body is streamed to a spool file with a byte cap (compressed transfer
encodings are refused rather than inflated) and the whole fetch, redirects included, runs
under one time limit.

Statuses: fetching off, a disallowed scheme, host, address or redirect target ->
PERMISSION_DENIED; a malformed URI, an unresolvable host, HTTP errors -> INVALID_ARGUMENT;
too many bytes or too slow -> RESOURCE_EXHAUSTED; the caller's deadline -> DEADLINE_EXCEEDED.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import os
import socket
import ssl
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from gateway.config import GatewayConfig
from gateway.errors import (
    BadMediaUri,
    DeadlineExceeded,
    EmptyMedia,
    LimitExceeded,
    MediaTooLarge,
    PermissionDenied,
)
from modgate.banks.digests import ContentDigests

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_DEFAULT_PORTS = {"http": 80, "https": 443}
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_CHUNK = 256 * 1024


class FetchTooSlow(LimitExceeded):
    """The fetch (redirects and body included) took longer than uri_fetch_timeout_s."""


@dataclass(frozen=True)
class FetchPolicy:
    enabled: bool = False
    schemes: frozenset[str] = frozenset({"https"})
    # Lower-case host names or IP literals; "*.example.com" matches any subdomain.
    hosts: tuple[str, ...] = ()
    allowed_networks: tuple[IPNetwork, ...] = ()
    max_redirects: int = 3
    max_bytes: int = 256 * 1024 * 1024
    timeout_s: float = 10.0
    # Extra PEM CA bundle for https origins (None: the default trust store).
    ca_file: Path | None = None

    @classmethod
    def from_config(cls, config: GatewayConfig) -> FetchPolicy:
        """From a GatewayConfig (its uri_* fields and its `security` settings)."""
        security = config.security
        return cls(
            enabled=config.uri_fetch_enabled,
            schemes=frozenset(security.uri_fetch_schemes),
            hosts=tuple(_normalise_host(h) for h in config.uri_allowlist),
            allowed_networks=tuple(
                ipaddress.ip_network(n, strict=False) for n in security.uri_fetch_allowed_networks
            ),
            max_redirects=security.uri_fetch_max_redirects,
            max_bytes=security.uri_fetch_max_bytes or config.max_stream_bytes,
            timeout_s=config.uri_fetch_timeout_s,
            ca_file=security.uri_fetch_ca_file,
        )

    def host_allowed(self, host: str) -> bool:
        for entry in self.hosts:
            if entry.startswith("*."):
                if host.endswith(entry[1:]) and len(host) > len(entry) - 1:
                    return True
            elif host == entry:
                return True
        return False


@dataclass(frozen=True)
class Target:
    """One checked hop: where to connect (address) and what to ask for (name, path)."""

    url: str  # as the caller or the redirect wrote it
    scheme: str
    host: str
    port: int
    address: IPAddress
    path: str  # path and query

    def request_url(self) -> str:
        literal = f"[{self.address}]" if self.address.version == 6 else str(self.address)
        return f"{self.scheme}://{literal}:{self.port}{self.path}"

    def host_header(self) -> str:
        name = f"[{self.host}]" if ":" in self.host else self.host
        return name if self.port == _DEFAULT_PORTS[self.scheme] else f"{name}:{self.port}"


def _normalise_host(host: str) -> str:
    return host.strip().lower().strip("[]").rstrip(".")


def _embedded_ipv4(address: IPAddress) -> IPAddress:
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address in _NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def address_problem(address: IPAddress, allowed: tuple[IPNetwork, ...] = ()) -> str | None:
    """Why `address` may not be fetched from (None: it may)."""
    if any(address in network for network in allowed):
        return None
    inner = _embedded_ipv4(address)
    if inner != address and any(inner in network for network in allowed):
        return None
    # The embedded IPv4 address first: it says where the packets would really go.
    for candidate in dict.fromkeys((inner, address)):
        if candidate.is_loopback:
            return "a loopback address"
        if candidate.is_link_local:
            return "a link-local address (cloud metadata endpoints live there)"
        if candidate.is_unspecified:
            return "an unspecified address"
        if candidate.is_multicast:
            return "a multicast address"
        if candidate.is_private:
            return "a private address"
        if candidate.is_reserved or not candidate.is_global:
            return "a non-public address"
    return None


async def resolve(host: str, port: int) -> list[IPAddress]:
    """Addresses for `host` (an IP literal resolves to itself, without DNS)."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise BadMediaUri(f"the media_uri host {host!r} cannot be resolved ({exc}); check the URI") from None
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise BadMediaUri(f"the media_uri host {host!r} has no address; check the URI")
    return addresses


async def vet(url: str, policy: FetchPolicy, *, hop: int = 0) -> Target:
    """Check one hop against the policy, resolving its host; raise before any connection."""
    where = "media_uri" if hop == 0 else f"redirect {hop} of media_uri (to {url[:200]!r})"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise BadMediaUri(f"{where} is not a valid URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        problem = f"{where} uses scheme {scheme or '(none)'!r}; only http(s) can be fetched"
        raise (BadMediaUri if hop == 0 else PermissionDenied)(problem)
    if scheme not in policy.schemes:
        raise PermissionDenied(
            f"{where}: {scheme}:// is not allowed on this gateway (allowed: "
            f"{', '.join(sorted(policy.schemes)) or 'none'}); use an {'/'.join(sorted(policy.schemes))} URI"
        )
    if parts.username is not None or parts.password is not None:
        raise BadMediaUri(f"{where} carries credentials (user:password@); they are not sent, remove them")
    host = _normalise_host(parts.hostname or "")
    if not host:
        raise BadMediaUri(f"{where} has no host")
    if not policy.host_allowed(host):
        raise PermissionDenied(f"{where}: host {host!r} is not in the gateway's URI allowlist")
    port = port or _DEFAULT_PORTS[scheme]
    addresses = await resolve(host, port)
    for address in addresses:
        problem = address_problem(address, policy.allowed_networks)
        if problem is not None:
            raise PermissionDenied(
                f"{where}: host {host!r} resolves to {address}, {problem}; the gateway does not fetch "
                "from non-public addresses unless MODGATE_GATEWAY_URI_FETCH_ALLOWED_NETWORKS lists them"
            )
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return Target(url=url, scheme=scheme, host=host, port=port, address=addresses[0], path=path)


def _too_large(size: int, maximum: int) -> MediaTooLarge:
    return MediaTooLarge(
        f"the media at media_uri is {size} bytes or more, over the {maximum}-byte limit; "
        "send a shorter or lower-bitrate video",
        limit="bytes",
        value=size,
        maximum=maximum,
    )


@functools.cache
def _ssl_context(ca_file: Path | None) -> ssl.SSLContext:
    # Loading the trust store takes tens of milliseconds: once per process, not per fetch.
    context = ssl.create_default_context()
    if ca_file is not None:
        context.load_verify_locations(cafile=str(ca_file))
    return context


def _write(spool: Any, chunk: bytes, digests: ContentDigests | None) -> None:
    if digests is not None:
        digests.update(chunk)  # MD5 + SHA-256 while the bytes arrive (intake's exact-hash lookup)
    spool.write(chunk)


async def _download(
    policy: FetchPolicy, first: Target, spool: Any, digests: ContentDigests | None = None
) -> int:
    """Follow (checked) redirects and write the body to `spool` (and feed `digests`
    when given); returns the byte count."""
    timeout = httpx.Timeout(policy.timeout_s)
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=0)
    verify = _ssl_context(policy.ca_file)
    async with httpx.AsyncClient(
        follow_redirects=False, trust_env=False, timeout=timeout, limits=limits, verify=verify
    ) as client:
        target = first
        for hop in range(1, policy.max_redirects + 2):
            request = client.build_request(
                "GET",
                target.request_url(),
                headers={
                    "Host": target.host_header(),
                    "Accept-Encoding": "identity",
                    "User-Agent": "modgate",
                },
                extensions={"sni_hostname": target.host} if target.scheme == "https" else {},
            )
            response = await client.send(request, stream=True)
            try:
                if response.status_code in _REDIRECTS:
                    location = response.headers.get("location")
                    if not location:
                        raise BadMediaUri(
                            f"fetching media_uri got HTTP {response.status_code} without Location"
                        )
                    if hop > policy.max_redirects:
                        break
                    target = await vet(urljoin(target.url, location), policy, hop=hop)
                    continue
                if response.status_code != 200:
                    raise BadMediaUri(
                        f"fetching media_uri returned HTTP {response.status_code}; check the URI"
                    )
                encoding = response.headers.get("content-encoding", "identity").strip().lower()
                if encoding not in ("", "identity"):
                    raise BadMediaUri(
                        f"the media_uri server sent Content-Encoding {encoding!r}; serve the container "
                        "bytes as they are (no transfer compression)"
                    )
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > policy.max_bytes:
                    raise _too_large(int(declared), policy.max_bytes)
                total = 0
                async for chunk in response.aiter_raw(_CHUNK):
                    total += len(chunk)
                    if total > policy.max_bytes:
                        raise _too_large(total, policy.max_bytes)
                    await asyncio.to_thread(_write, spool, chunk, digests)
                return total
            finally:
                await response.aclose()
        raise BadMediaUri(
            f"fetching media_uri was redirected more than {policy.max_redirects} times; send the final URI"
        )


class _Budget:
    """The fetch's one time limit: uri_fetch_timeout_s, or the caller's deadline when sooner."""

    def __init__(self, policy: FetchPolicy, deadline_s: float | None) -> None:
        self.policy = policy
        self.by_deadline = deadline_s is not None and deadline_s < policy.timeout_s
        limit = min(policy.timeout_s, deadline_s) if deadline_s is not None else policy.timeout_s
        self.ends = time.monotonic() + max(limit, 0.0)

    @contextlib.asynccontextmanager
    async def guard(self) -> AsyncIterator[None]:
        try:
            async with asyncio.timeout(self.left()):
                yield
        except TimeoutError:
            if self.by_deadline:
                raise DeadlineExceeded(
                    "the request deadline passed while fetching media_uri; allow a longer deadline"
                ) from None
            raise FetchTooSlow(
                f"fetching media_uri took longer than {self.policy.timeout_s:g} s; serve it faster or "
                "send the media bytes",
                limit="fetch_time_s",
                value=self.policy.timeout_s,
                maximum=self.policy.timeout_s,
            ) from None
        except httpx.HTTPError as exc:
            raise BadMediaUri(f"fetching media_uri failed: {type(exc).__name__}: {exc}") from None

    def left(self) -> float:
        return max(self.ends - time.monotonic(), 0.0)


@contextlib.asynccontextmanager
async def fetched_media(
    uri: str,
    policy: FetchPolicy,
    *,
    spool_dir: Path | None = None,
    deadline_s: float | None = None,
    digests: ContentDigests | None = None,
) -> AsyncIterator[Path]:
    """Fetch `uri` into a spool file that exists for the duration of the block (feeding the
    body to `digests` when given)."""
    if not policy.enabled:
        raise PermissionDenied(
            "fetching media over http(s) is disabled on this gateway; send the media bytes "
            "inline (Moderate) or streamed (ModerateStream)"
        )
    budget = _Budget(policy, deadline_s)
    # The first hop is checked before anything is set up: most refusals end here.
    async with budget.guard():
        first = await vet(uri, policy)
    fd, name = tempfile.mkstemp(prefix="modgate-fetch-", suffix=".media", dir=spool_dir)
    path = Path(name)
    try:
        with os.fdopen(fd, "wb") as spool:
            async with budget.guard():
                size = await _download(policy, first, spool, digests)
        if size == 0:
            raise EmptyMedia("the media fetched from media_uri is empty (0 bytes)")
        yield path
    finally:
        await asyncio.to_thread(path.unlink, missing_ok=True)
