"""The verdict store: every verdict kept, the idempotency record, the input of replay.

SQLAlchemy 2 Core over SQLite (WAL, a file under MODGATE_HOME: the default, nothing to run)
or PostgreSQL (MODGATE_STORE_URL=postgresql://...), schema by Alembic migrations (migrations/).

- config.py   StoreSettings (MODGATE_STORE_*)
- schema.py   the tables; engine.py  engine per URL + migrations under a lock
- records.py  VerdictRecord (one stored verdict), VerdictSummary, ReplayRow, ServedRow
- store.py    VerdictStore: claim / commit / find / get / summaries / scan / scan_for_replay /
              scan_served / prune
- spool.py    VerdictSpool: verdicts answered while the store was down, drained later
"""

from modgate.store.config import StoreSettings
from modgate.store.records import PolicyStamp, ReplayRow, ServedRow, VerdictRecord, VerdictSummary
from modgate.store.store import Claimed, Decided, Held, StoreUnavailable, VerdictStore

__all__ = [
    "Claimed",
    "Decided",
    "Held",
    "PolicyStamp",
    "ReplayRow",
    "ServedRow",
    "StoreSettings",
    "StoreUnavailable",
    "VerdictRecord",
    "VerdictStore",
    "VerdictSummary",
]
