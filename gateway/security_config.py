"""Security settings of the gateway: TLS, caller tokens and URI-fetch hardening.

Read from `MODGATE_GATEWAY_*` env vars (the Helm chart renders the TLS and auth file paths);
nested in the gateway's one settings module (gateway/config.py) as `security`. The switch for
URI fetching and its host allowlist stay in GatewayConfig (uri_fetch_enabled, uri_allowlist,
uri_fetch_timeout_s); what is here narrows what an enabled fetch may do.
"""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def _comma_list(value: object) -> object:
    # Accept "a,b" as well as a JSON list, like the other gateway list settings.
    if isinstance(value, str):
        items = json.loads(value) if value.lstrip().startswith("[") else value.split(",")
        return [str(item).strip() for item in items if str(item).strip()]
    return value


class SecuritySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MODGATE_GATEWAY_", extra="ignore", frozen=True)

    # --- TLS on the gRPC port ---------------------------------------------------------------
    # PEM server certificate chain and key; both or neither (neither: plaintext, for local use).
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    # PEM CA bundle: set, it turns on mTLS (a client certificate signed by it is required).
    tls_client_ca_file: Path | None = None

    # --- caller authentication ------------------------------------------------------------------
    # YAML: sha256(token) hex -> {caller, policies, allow_uri_fetch}. Unset: no authentication.
    auth_tokens_file: Path | None = None

    # --- URI fetching (when uri_fetch_enabled) -------------------------------------------------
    # Schemes an http(s) media_uri may use; plain http only when listed.
    uri_fetch_schemes: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["https"])
    # Non-public addresses (private, loopback, link-local, cloud metadata...) are refused after
    # DNS resolution unless they fall in one of these networks (CIDR, e.g. "10.20.0.0/16").
    uri_fetch_allowed_networks: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Redirects followed (each hop re-checked against the scheme, host and address rules).
    uri_fetch_max_redirects: int = Field(default=3, ge=0, le=10)
    # Byte cap for a fetched body (default: max_stream_bytes).
    uri_fetch_max_bytes: int | None = Field(default=None, ge=1)
    # Extra PEM CA bundle trusted for https origins (e.g. an internal CA); default trust store otherwise.
    uri_fetch_ca_file: Path | None = None

    @field_validator("uri_fetch_schemes", "uri_fetch_allowed_networks", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        return _comma_list(value)

    @field_validator("uri_fetch_schemes")
    @classmethod
    def _schemes(cls, value: list[str]) -> list[str]:
        schemes = [s.lower() for s in value]
        unknown = sorted(set(schemes) - {"http", "https"})
        if unknown:
            raise ValueError(f"only http and https can be fetched, not {', '.join(unknown)}")
        return schemes

    @field_validator("uri_fetch_allowed_networks")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for network in value:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError:
                raise ValueError(f"{network!r} is not a network in CIDR form such as 10.0.0.0/8") from None
        return value

    @model_validator(mode="after")
    def _tls_pairs(self) -> SecuritySettings:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError(
                "set both MODGATE_GATEWAY_TLS_CERT_FILE and MODGATE_GATEWAY_TLS_KEY_FILE, or neither"
            )
        if self.tls_client_ca_file is not None and self.tls_cert_file is None:
            raise ValueError(
                "MODGATE_GATEWAY_TLS_CLIENT_CA_FILE (mTLS) needs TLS: set MODGATE_GATEWAY_TLS_CERT_FILE "
                "and MODGATE_GATEWAY_TLS_KEY_FILE too"
            )
        return self

    @property
    def tls_enabled(self) -> bool:
        return self.tls_cert_file is not None
