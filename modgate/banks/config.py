"""Where the banks live and how often readers look for changes: MODGATE_BANK_* settings.

Shared by every process kind that reads banks (the gateway, the vision service, the CLI):
each embeds BankSettings in its own settings, as the gateway embeds OrchestrationSettings.

    MODGATE_BANK_DIR                 the bank directory (default $MODGATE_HOME/banks, else
                                     ~/.modgate/banks); in Kubernetes a volume every replica mounts
    MODGATE_BANK_RELOAD_INTERVAL_S   how often a reader checks the directory's VERSION file (2 s)
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_bank_dir() -> Path:
    home = os.environ.get("MODGATE_HOME", "").strip()
    return (Path(home).expanduser() if home else Path.home() / ".modgate") / "banks"


class BankSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="MODGATE_BANK_", env_ignore_empty=True, extra="ignore", frozen=True
    )

    dir: Path = Field(default_factory=default_bank_dir)
    reload_interval_s: float = Field(default=2.0, gt=0)
