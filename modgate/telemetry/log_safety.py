"""Log lines a caller cannot forge: control characters escaped wherever a record is rendered.

A request id such as ``"x\\n2099-01-01 INFO forged"`` (or one carrying ESC sequences that
rewrite a terminal) must come out as one line that shows what was sent. Escaping at each call
site misses the next call site, so it is done once per record, in the record factory that
:func:`~modgate.telemetry.logs.install_log_record_factory` installs in every modgate process:

- the rendered message (:meth:`EscapedLogRecord.getMessage`, which every ``logging.Formatter``
  calls, BentoML's and uvicorn's included),
- the record's ``args`` and ``msg`` (for formatters that read them directly),
- the traceback text (``exc_text``, rendered here so that every formatter reuses it): each
  line is indented and escaped, so a traceback stays readable over several lines while a line
  break inside an exception message cannot start a line that looks like a log record.

Escaped: C0 controls (``\\n`` ``\\r`` ``\\t`` by name, others ``\\xNN``), DEL, C1 controls
(``\\x80``-``\\x9f``) and the Unicode line and paragraph separators (``\\u2028``, ``\\u2029``).
Backslashes are left alone, so escaping is idempotent (a value escaped twice reads the same).
"""

from __future__ import annotations

import logging
import re
import traceback
from collections.abc import Mapping
from types import TracebackType
from typing import Any

_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# Continuation lines of a record (traceback) start with this: a record's own line starts with
# its timestamp at column 0, so nothing inside a traceback can pass for one.
TRACEBACK_INDENT = "  "

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]


def _replacement(match: re.Match[str]) -> str:
    char = match.group()
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape_control(text: str) -> str:
    """``text`` with every control character and line separator written as an escape."""
    if not _UNSAFE.search(text):
        return text
    return _UNSAFE.sub(_replacement, text)


def safe_traceback(exc_info: ExcInfo) -> str:
    """The traceback as ``logging.Formatter.formatException`` renders it, every line indented
    and escaped (only the traceback's own line breaks remain)."""
    text = "".join(traceback.format_exception(*exc_info)).rstrip("\n")
    return "\n".join(TRACEBACK_INDENT + escape_control(line) for line in text.split("\n"))


def _escape_value(value: Any) -> Any:
    return escape_control(value) if isinstance(value, str) else value


def escape_args(args: Any) -> Any:
    """Record args with their string members escaped (tuple, or the single mapping)."""
    if isinstance(args, tuple):
        return tuple(_escape_value(a) for a in args)
    if isinstance(args, Mapping):
        return {k: _escape_value(v) for k, v in args.items()}
    return args


class EscapedLogRecord(logging.LogRecord):
    """A LogRecord whose rendered message has its control characters escaped.

    The message is rendered from the caller's original args (kept in ``raw_args``), so ``%r``
    reads as usual; ``args`` holds the escaped ones for formatters that use them directly.
    """

    raw_args: Any = None

    def getMessage(self) -> str:
        message = str(self.msg)
        args = self.raw_args if self.raw_args is not None else self.args
        if args:
            message = message % args
        return escape_control(message)


def make_safe(record: logging.LogRecord) -> logging.LogRecord:
    """Escape ``record`` in place (see the module docstring); returns it."""
    if type(record) is logging.LogRecord:
        record.__class__ = EscapedLogRecord
        record.raw_args = record.args  # type: ignore[attr-defined]
    record.args = escape_args(record.args)
    if isinstance(record.msg, str):
        record.msg = escape_control(record.msg)
    if record.exc_info and record.exc_info[0] is not None and not record.exc_text:
        record.exc_text = safe_traceback(record.exc_info)  # type: ignore[arg-type]
    return record
