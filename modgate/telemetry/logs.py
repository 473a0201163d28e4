"""Logging: trace ids on every record, caller-supplied values escaped, text or JSON lines.

:func:`install_log_record_factory` (every modgate process, via
:func:`~modgate.telemetry.setup_telemetry`) makes every LogRecord, whoever logs it, carry
``trace_id``/``span_id`` and escapes its control characters (:mod:`.log_safety`), so a
caller's request id cannot forge a log line in any handler's output, BentoML's included.

:func:`configure_logging` picks the line format from ``MODGATE_LOG_FORMAT`` (read by
:mod:`.config`): ``text`` (default, :data:`LOG_FORMAT`) or ``json`` (one JSON object per
line: time, level, logger, message, trace_id, span_id, service, and exception when there is
one). In JSON mode the handlers a host framework installed (BentoML's) are switched to JSON
too, so every process of the stack writes the same kind of line.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace

from modgate.telemetry.config import log_format_from_env
from modgate.telemetry.log_safety import escape_control, make_safe, safe_traceback

# Every line carries the ids so a log line can be pasted into `modgate trace`.
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s [trace_id=%(trace_id)s span_id=%(span_id)s] %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per record; values escaped like the text format, non-ASCII as \\u escapes."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": escape_control(record.getMessage()),
            "trace_id": _id_or_none(getattr(record, "trace_id", None)),
            "span_id": _id_or_none(getattr(record, "span_id", None)),
            "service": self.service,
        }
        if record.exc_info and record.exc_info[0] is not None:
            # Indented like the text format: printed, the traceback cannot start a line either.
            line["exception"] = record.exc_text or safe_traceback(record.exc_info)  # type: ignore[arg-type]
        return json.dumps(line, ensure_ascii=True)


def _id_or_none(value: object) -> str | None:
    return value if isinstance(value, str) and value != "-" else None


def configure_logging(
    level: int | str = logging.INFO, *, service: str = "modgate", log_format: str | None = None
) -> None:
    """Root logger to stderr, text (:data:`LOG_FORMAT`) or JSON per ``MODGATE_LOG_FORMAT``.

    Existing root handlers are kept (a host framework owns them) and ours is added only when
    there are none; in JSON mode every existing handler is switched to :class:`JsonFormatter`.
    ``service`` names the process in JSON lines."""
    install_log_record_factory()
    fmt = log_format or log_format_from_env()
    root = logging.getLogger()
    root.setLevel(level)
    formatter = JsonFormatter(service) if fmt == "json" else logging.Formatter(LOG_FORMAT)
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(formatter)
        root.addHandler(handler)
    elif fmt == "json":
        for handler in _all_handlers():
            handler.setFormatter(formatter)


def _all_handlers() -> list[logging.Handler]:
    loggers = [logging.getLogger()] + [
        logger for logger in logging.root.manager.loggerDict.values() if isinstance(logger, logging.Logger)
    ]
    seen: dict[int, logging.Handler] = {}
    for logger in loggers:
        for handler in logger.handlers:
            seen.setdefault(id(handler), handler)
    return list(seen.values())


_factory_installed = False


def install_log_record_factory() -> None:
    """Every LogRecord gets ``trace_id``/``span_id`` ("-" outside a span) and escaped control
    characters (see :mod:`.log_safety`), whoever logs it."""
    global _factory_installed
    if _factory_installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        ctx = trace.get_current_span().get_span_context()
        record.trace_id = format(ctx.trace_id, "032x") if ctx.is_valid else "-"
        record.span_id = format(ctx.span_id, "016x") if ctx.is_valid else "-"
        return make_safe(record)

    logging.setLogRecordFactory(factory)
    _factory_installed = True
