"""Fixtures for the telemetry / trace store tests: a real trace store process per test."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from modgate.tools.tracestore import StoredSpan, TraceStore
from modgate.tools.tracestore.process import TraceStoreProcess

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def trace_store(tmp_path: Path) -> Iterator[TraceStoreProcess]:
    db, log = tmp_path / "traces.db", tmp_path / "tracestore.log"
    with TraceStoreProcess(db, grpc_port=0, log_path=log) as store:
        yield store


def clean_env(**extra: str) -> dict[str, str]:
    """This environment minus any OTEL_/MODGATE_ tracing settings of the developer's shell."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OTEL_", "MODGATE_TRACING", "MODGATE_TRACE_DB", "MODGATE_VARIANT"))
    }
    env["PYTHONPATH"] = str(REPO)
    env.update(extra)
    return env


def run_python(code: str, env: dict[str, str], timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter (telemetry is per process) and require success."""
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, f"child failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
    return result


def wait_for_spans(db: Path, trace_id: str, count: int, timeout: float = 10.0) -> list[StoredSpan]:
    """Spans of ``trace_id`` once at least ``count`` arrived (exporters batch)."""
    deadline = time.monotonic() + timeout
    with TraceStore(db) as store:
        while True:
            spans = store.spans_for_trace(trace_id)
            if len(spans) >= count or time.monotonic() > deadline:
                return spans
            time.sleep(0.1)
