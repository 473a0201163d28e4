"""The review console's settings: MODGATE_CONSOLE_* (and the verdict store's MODGATE_STORE_*).

MODGATE_CONSOLE_HOST            bind address (default 127.0.0.1: loopback unless configured)
MODGATE_CONSOLE_PORT            default 8080
MODGATE_CONSOLE_TOKENS_FILE     sha256(token) -> {user, role} (users.py); default
                                $MODGATE_HOME/console-tokens.yaml. Missing: nobody can log in.
MODGATE_CONSOLE_SESSION_SECRET  key of the session cookie's signature; unset: a random one per
                                process (sessions end when the console restarts)
MODGATE_CONSOLE_SECURE_COOKIES  true behind TLS: the cookie gets the Secure flag
MODGATE_CONSOLE_PUBLIC_ORIGIN   the origin browsers use (https://review.example.com) when a
                                proxy changes the Host header; default: this request's own
MODGATE_CONSOLE_SESSION_TTL_S   a login lasts this long
MODGATE_CONSOLE_LEASE_S         a claim lasts this long; an expired lease may be taken over
MODGATE_CONSOLE_PAGE_SIZE       queue rows per page
MODGATE_CONSOLE_TRACE_DB        the local trace store's database (`modgate up` writes it);
                                default MODGATE_TRACE_DB, else $MODGATE_HOME/traces.db
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from modgate.store.config import StoreSettings, modgate_home

DEFAULT_PORT = 8080


def default_tokens_file() -> Path:
    return modgate_home() / "console-tokens.yaml"


def default_trace_db() -> Path:
    # The same rule as modgate.tools.tracestore.default_db_path, without importing the tools.
    configured = os.environ.get("MODGATE_TRACE_DB", "").strip()
    return Path(configured).expanduser() if configured else modgate_home() / "traces.db"


def _random_secret() -> SecretStr:
    return SecretStr(secrets.token_urlsafe(32))


class ConsoleSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="MODGATE_CONSOLE_", env_ignore_empty=True, extra="ignore", frozen=True
    )

    host: str = "127.0.0.1"
    port: int = Field(default=DEFAULT_PORT, ge=0, le=65535)
    tokens_file: Path = Field(default_factory=default_tokens_file)
    session_secret: SecretStr = Field(default_factory=_random_secret)
    secure_cookies: bool = False
    public_origin: str = ""
    session_ttl_s: float = Field(default=8 * 3600.0, gt=0)
    lease_s: float = Field(default=900.0, gt=0)
    page_size: int = Field(default=50, ge=1, le=500)
    trace_db: Path = Field(default_factory=default_trace_db)
    log_level: str = "INFO"
    store: StoreSettings = Field(default_factory=StoreSettings)
