"""TLS for the gateway's gRPC port: server certificate, optionally client certificates (mTLS).

MODGATE_GATEWAY_TLS_CERT_FILE + MODGATE_GATEWAY_TLS_KEY_FILE (PEM) turn TLS on;
MODGATE_GATEWAY_TLS_CLIENT_CA_FILE additionally requires every client to present a certificate
signed by that CA (the handshake fails otherwise, so no RPC runs). Without them the port is
plaintext, which is meant for 127.0.0.1; a plaintext port on another address logs a warning.
"""

from __future__ import annotations

import logging
from pathlib import Path

import grpc

from gateway.security_config import SecuritySettings

log = logging.getLogger("gateway.tls")

_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]", "::1")


def _read_pem(path: Path, what: str, env: str) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read the {what} {path} ({env}): {exc.strerror or exc}") from None
    if b"-----BEGIN " not in data:
        raise ValueError(f"the {what} {path} ({env}) is not PEM (no '-----BEGIN' line)")
    return data


def server_credentials(settings: SecuritySettings) -> grpc.ServerCredentials | None:
    """Credentials for the listening port, or None for plaintext."""
    if settings.tls_cert_file is None or settings.tls_key_file is None:
        return None
    chain = _read_pem(settings.tls_cert_file, "TLS certificate", "MODGATE_GATEWAY_TLS_CERT_FILE")
    key = _read_pem(settings.tls_key_file, "TLS key", "MODGATE_GATEWAY_TLS_KEY_FILE")
    client_ca = None
    if settings.tls_client_ca_file is not None:
        client_ca = _read_pem(
            settings.tls_client_ca_file, "client CA bundle", "MODGATE_GATEWAY_TLS_CLIENT_CA_FILE"
        )
    return grpc.ssl_server_credentials(
        [(key, chain)], root_certificates=client_ca, require_client_auth=client_ca is not None
    )


def add_listen_port(server: grpc.aio.Server, listen: str, settings: SecuritySettings) -> int:
    """Bind `listen` with TLS when configured; returns the port (0 when binding failed)."""
    credentials = server_credentials(settings)
    if credentials is None:
        host = listen.rsplit(":", 1)[0]
        if host not in _LOOPBACK_HOSTS:
            log.warning(
                "TLS is OFF on %s: traffic, tokens included, travels in clear text; set "
                "MODGATE_GATEWAY_TLS_CERT_FILE/_KEY_FILE (or terminate TLS in front of the gateway)",
                listen,
            )
        return server.add_insecure_port(listen)
    mode = "mTLS (client certificates required)" if settings.tls_client_ca_file else "TLS"
    log.info("gRPC port %s uses %s", listen, mode)
    return server.add_secure_port(listen, credentials)
