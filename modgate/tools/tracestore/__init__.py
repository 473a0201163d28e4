"""Local trace store: an OTLP receiver on 127.0.0.1 that keeps spans in SQLite.

`modgate up` runs it (``python -m modgate.tools.tracestore --port 4318 --db PATH``) and points every
process's OTEL exporter at it; ``modgate trace`` reads the same database. In Kubernetes any
OTLP collector takes its place.
"""

from __future__ import annotations

import os
from pathlib import Path

from modgate.tools.tracestore.store import StoredSpan, TraceStore

__all__ = ["StoredSpan", "TraceStore", "default_db_path"]


def default_db_path() -> Path:
    """MODGATE_TRACE_DB, else $MODGATE_HOME/traces.db, else ~/.modgate/traces.db: where
    `modgate up` keeps its trace store, so `modgate trace` finds it without options."""
    configured = os.environ.get("MODGATE_TRACE_DB", "").strip()
    if configured:
        return Path(configured).expanduser()
    home = os.environ.get("MODGATE_HOME", "").strip()
    return (Path(home).expanduser() if home else Path.home() / ".modgate") / "traces.db"
