"""Logging with trace ids: every log record carries ``trace_id``/``span_id`` for the format."""

from __future__ import annotations

import logging
import sys
from typing import Any

from opentelemetry import trace

# Every line carries the ids so a log line can be pasted into `modgate trace`.
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s [trace_id=%(trace_id)s span_id=%(span_id)s] %(message)s"


def configure_logging(level: int | str = logging.INFO) -> None:
    """Root logger to stderr with :data:`LOG_FORMAT` (trace and span id on every line).

    Existing root handlers are kept (a host framework owns them); ours is added only when
    there are none."""
    install_log_record_factory()
    root = logging.getLogger()
    root.setLevel(level)
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        root.addHandler(handler)


_factory_installed = False


def install_log_record_factory() -> None:
    """Every LogRecord gets ``trace_id``/``span_id`` ("-" outside a span), whoever logs it."""
    global _factory_installed
    if _factory_installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        ctx = trace.get_current_span().get_span_context()
        record.trace_id = format(ctx.trace_id, "032x") if ctx.is_valid else "-"
        record.span_id = format(ctx.span_id, "016x") if ctx.is_valid else "-"
        return record

    logging.setLogRecordFactory(factory)
    _factory_installed = True
