"""What `modgate verdicts` and `modgate replay` share: --store-url, --since, opening the store.

Opening fails with StoreProblem (exit 2), whose message names the store (password hidden)
and what to do; a SQLite file that does not exist is reported as such rather than created
empty. Times given as --since are ISO-8601 (UTC unless they say otherwise) or relative to
now ("30m", "2h", "3d", "1w").
"""

from __future__ import annotations

import argparse
import re
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the store (SQLAlchemy) is imported when a command runs, not to build the parser
    from modgate.store import VerdictStore

EXIT_STORE = 2
_RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_PASSWORD = re.compile(r"//([^:/@]*):([^@]*)@")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
SINCE_HELP = (
    "only verdicts decided at or after T: ISO-8601 (2026-12-01, 2026-12-01T10:00Z; UTC unless an "
    "offset is given) or relative to now (30m, 2h, 3d, 1w)"
)


class StoreProblem(RuntimeError):
    """The store cannot be opened; the message says which and what to do."""


def add_store_url(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--store-url",
        default=None,
        metavar="URL",
        help="the verdict store (default: MODGATE_STORE_URL, else SQLite at $MODGATE_HOME/verdicts.db): "
        "sqlite:///PATH or postgresql://USER:PASSWORD@HOST/DB",
    )


def parse_since(value: str, *, now: float | None = None) -> float:
    """Unix seconds of an ISO-8601 time or a duration before `now`; ValueError with the forms."""
    relative = _RELATIVE.match(value)
    if relative is not None:
        amount, unit = relative.groups()
        return (time.time() if now is None else now) - float(amount) * _UNIT_S[unit]
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(
            f"{value!r} is neither an ISO-8601 time (2026-12-01, 2026-12-01T10:00Z) "
            "nor a duration (30m, 2h, 3d, 1w)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def since_arg(value: str) -> float:
    """argparse type for --since (a bad value is a usage error, exit 2)."""
    try:
        return parse_since(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def utc(seconds: float) -> str:
    """A decision time as the tables print it: 2026-12-01 10:00:00Z."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def shown_url(url: str) -> str:
    """The URL with its password hidden."""
    return _PASSWORD.sub(r"//\1:***@", url)


def _hidden(message: str, url: str) -> str:
    """`message` without the URL's password, should a driver's error quote it."""
    found = _PASSWORD.search(url)
    password = found.group(2) if found else ""
    return message.replace(password, "***") if password else message


def open_store(url: str | None) -> VerdictStore:
    """The store at `url` (None: StoreSettings' default), migrated to this code's schema;
    StoreProblem when it cannot be used."""
    import sqlalchemy as sa

    from modgate.store import StoreSettings, StoreUnavailable, VerdictStore
    from modgate.store.engine import StoreError, sqlite_path

    settings = StoreSettings() if url is None else StoreSettings(url=url)
    shown = shown_url(settings.url)
    try:
        path = sqlite_path(settings.url)
    except sa.exc.ArgumentError:
        raise StoreProblem(
            f"{shown!r} is not a store URL: use sqlite:///PATH or postgresql://USER:PASSWORD@HOST/DB"
        ) from None
    if path is not None and not path.exists():
        raise StoreProblem(
            f"no verdict store at {path} ({shown}): a gateway creates it with its first verdict "
            "(`modgate up`); pass --store-url or set MODGATE_STORE_URL to read another store"
        )
    try:
        return VerdictStore.open(settings)
    except (StoreUnavailable, StoreError, sa.exc.ArgumentError, ImportError) as exc:
        raise StoreProblem(
            f"{shown}: {_hidden(str(exc), settings.url)}. Check that the database is running and "
            "reachable from here, or pass --store-url / set MODGATE_STORE_URL to the right store"
        ) from None
