"""Local trace store: an OTLP receiver on 127.0.0.1 that keeps spans in SQLite.

`modgate up` runs it (``python -m modgate.tracestore --port 4318 --db PATH``) and points every
process's OTEL exporter at it; ``modgate trace`` reads the same database. In Kubernetes any
OTLP collector takes its place.
"""

from __future__ import annotations

import os
from pathlib import Path

from modgate.tracestore.store import StoredSpan, TraceStore

__all__ = ["StoredSpan", "TraceStore", "default_db_path"]


def default_db_path() -> Path:
    """MODGATE_TRACE_DB, else ~/.modgate/traces.db (shared by the store and `modgate trace`)."""
    configured = os.environ.get("MODGATE_TRACE_DB", "").strip()
    return Path(configured).expanduser() if configured else Path.home() / ".modgate" / "traces.db"
