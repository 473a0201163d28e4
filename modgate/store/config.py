"""Where verdicts are kept and for how long: MODGATE_STORE_* settings.

Shared by every process kind that opens the verdict store (the gateway, `modgate verdicts`,
`modgate replay`); each embeds StoreSettings in its own settings, as the gateway embeds
BankSettings.

    MODGATE_STORE_ENABLED           false: no verdict is kept (idempotency and replay are off)
    MODGATE_STORE_URL               SQLAlchemy URL; empty: SQLite (WAL) at
                                    $MODGATE_HOME/verdicts.db, else ~/.modgate/verdicts.db.
                                    postgresql://user:pass@host/db uses psycopg 3.
    MODGATE_STORE_RETENTION_DAYS    verdicts older than this are pruned (0: kept forever)
    MODGATE_STORE_PRUNE_INTERVAL_S  how often the gateway prunes (and drains the spool)
    MODGATE_STORE_SPOOL_DIR         where verdicts wait while the store is down (append-only
                                    files, drained into the store when it is back); default
                                    $MODGATE_HOME/verdict-spool
    MODGATE_STORE_SQLITE_SYNCHRONOUS  NORMAL (survives a killed process: the default) or FULL
                                    (also survives power loss, one fsync per commit)
    MODGATE_STORE_THUMBNAILS        false: keep no evidence-frame thumbnails (the review
                                    console then shows the evidence without pictures)
    MODGATE_STORE_THUMBNAIL_MAX_SIDE, MODGATE_STORE_THUMBNAILS_PER_VERDICT
                                    their size (px, longest side) and how many per verdict
"""

from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def modgate_home() -> Path:
    home = os.environ.get("MODGATE_HOME", "").strip()
    return Path(home).expanduser() if home else Path.home() / ".modgate"


def default_store_url() -> str:
    return f"sqlite:///{modgate_home() / 'verdicts.db'}"


def default_spool_dir() -> Path:
    return modgate_home() / "verdict-spool"


class SqliteSynchronous(StrEnum):
    NORMAL = "NORMAL"
    FULL = "FULL"


class StoreSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="MODGATE_STORE_", env_ignore_empty=True, extra="ignore", frozen=True
    )

    enabled: bool = True
    url: str = Field(default_factory=default_store_url)
    retention_days: float = Field(default=90.0, ge=0)
    prune_interval_s: float = Field(default=3600.0, gt=0)
    spool_dir: Path = Field(default_factory=default_spool_dir)
    sqlite_synchronous: SqliteSynchronous = SqliteSynchronous.NORMAL
    # PostgreSQL: a connection attempt gives up after this; the store then counts as down.
    connect_timeout_s: float = Field(default=2.0, gt=0)
    # After a failure the store is not tried again for this long (requests spool or refuse at
    # once instead of each waiting for a timeout); the spool drainer probes it meanwhile.
    down_backoff_s: float = Field(default=2.0, ge=0)
    pool_size: int = Field(default=8, ge=1)
    # A duplicate of a request being decided elsewhere polls for its verdict this often.
    claim_poll_s: float = Field(default=0.02, gt=0)
    # Small JPEGs of the frames VISUAL evidence points at, for the review console: only those
    # frames (a reviewer needs to see what was flagged, the store must not become a media
    # archive), ~5 KB each at 160 px.
    thumbnails: bool = True
    thumbnail_max_side: int = Field(default=160, ge=32, le=512)
    thumbnails_per_verdict: int = Field(default=8, ge=0, le=64)

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")
