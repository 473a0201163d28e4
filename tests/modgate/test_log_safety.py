"""Escaping of log records (modgate.telemetry.log_safety) and the JSON line format."""

from __future__ import annotations

import json
import logging
import sys

import pytest

from modgate.telemetry import JsonFormatter, TelemetryConfig, escape_control
from modgate.telemetry.config import log_format_from_env
from modgate.telemetry.log_safety import make_safe
from modgate.telemetry.logs import LOG_FORMAT
from tests.modgate.conftest import clean_env, run_python


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("a\nb", "a\\nb"),
        ("a\r\nb", "a\\r\\nb"),
        ("tab\there", "tab\\there"),
        ("\x1b[2J\x00\x7f", "\\x1b[2J\\x00\\x7f"),
        ("c1 \x85 \x9b", "c1 \\x85 \\x9b"),
        ("ls \u2028 ps \u2029", "ls \\u2028 ps \\u2029"),
        ("café 日本 ok", "café 日本 ok"),
        ("back\\slash", "back\\slash"),
    ],
)
def test_escape_control(raw: str, escaped: str) -> None:
    assert escape_control(raw) == escaped
    assert escape_control(escaped) == escaped  # idempotent: escaping twice changes nothing


def _record(msg: object, *args: object, exc_info: bool = False) -> logging.LogRecord:
    info = sys.exc_info() if exc_info else None
    return make_safe(logging.LogRecord("unit", logging.INFO, __file__, 1, msg, args or None, info))


def test_rendered_message_is_one_line_and_repr_reads_as_usual() -> None:
    record = _record("request %s refused: %r", "x\n2099-01-01 INFO forged", "a\u2028b")
    assert record.getMessage() == "request x\\n2099-01-01 INFO forged refused: 'a\\u2028b'"
    # Formatters that read args directly see them escaped too.
    assert record.args == ("x\\n2099-01-01 INFO forged", "a\\u2028b")
    line = logging.Formatter("%(levelname)s %(message)s").format(record)
    assert line.splitlines() == [line]


def test_preformatted_messages_and_mapping_args_are_escaped() -> None:
    assert _record(f"f-string {'x' + chr(10) + 'y'}").getMessage() == "f-string x\\ny"
    assert _record("%(id)s", {"id": "v\r\n"}).getMessage() == "v\\r\\n"
    assert _record({"key": "a\nb"}).getMessage() == "{'key': 'a\\nb'}"
    assert _record("no args, 100% literal").getMessage() == "no args, 100% literal"


def test_traceback_stays_multiline_but_every_line_is_an_indented_continuation() -> None:
    try:
        raise ValueError("bad\n2099-01-01 INFO forged\x1b[2J")
    except ValueError:
        record = _record("failed for %s", "id\n", exc_info=True)
    text = logging.Formatter(LOG_FORMAT.replace("%(trace_id)s", "-").replace("%(span_id)s", "-")).format(
        record
    )
    first, *rest = text.split("\n")
    assert first.endswith("failed for id\\n")
    assert rest[0] == "  Traceback (most recent call last):"
    assert rest[-2:] == ["  ValueError: bad", "  2099-01-01 INFO forged\\x1b[2J"]
    assert all(line.startswith("  ") for line in rest)


def test_json_formatter_writes_one_parsable_object_per_record() -> None:
    record = _record("request %s", 'x\n{"forged": 1}')
    record.trace_id, record.span_id = "0af7651916cd43dd8448eb211c80319c", "-"
    line = JsonFormatter("gateway").format(record)
    assert "\n" not in line
    parsed = json.loads(line)
    assert parsed["message"] == 'request x\\n{"forged": 1}'
    assert parsed["level"] == "INFO" and parsed["logger"] == "unit" and parsed["service"] == "gateway"
    assert parsed["trace_id"] == "0af7651916cd43dd8448eb211c80319c" and parsed["span_id"] is None
    assert parsed["time"].endswith("+00:00")


def test_log_format_setting() -> None:
    assert log_format_from_env({}) == "text"
    assert log_format_from_env({"MODGATE_LOG_FORMAT": " JSON "}) == "json"
    assert TelemetryConfig.from_env({"MODGATE_LOG_FORMAT": "json"}).log_format == "json"
    with pytest.raises(ValueError, match="MODGATE_LOG_FORMAT='xml' is not supported: use text or json"):
        log_format_from_env({"MODGATE_LOG_FORMAT": "xml"})


def test_bentoml_handlers_escape_and_switch_to_json() -> None:
    """In a BentoML process the framework owns the handlers (configured before the service
    module runs setup_telemetry): they escape, and MODGATE_LOG_FORMAT=json switches them."""
    code = """
import logging
from bentoml._internal.log import configure_server_logging
configure_server_logging()
from modgate import telemetry
telemetry.setup_telemetry("svc", log_level="INFO")
logging.getLogger("bentoml.access").info("path=%s", "/x\\n2099-01-01 INFO forged")
logging.getLogger("svc").warning("plain \\x1b[2J")
"""
    for log_format in ("text", "json"):
        result = run_python(code, clean_env(OTEL_SDK_DISABLED="true", MODGATE_LOG_FORMAT=log_format))
        lines = result.stdout.splitlines()
        assert len(lines) == 2, result.stdout
        assert "\x1b" not in result.stdout
        if log_format == "json":
            records = [json.loads(line) for line in lines]
            assert [r["logger"] for r in records] == ["bentoml.access", "svc"]
            assert records[0]["message"] == "path=/x\\n2099-01-01 INFO forged"
        else:
            assert lines[0].endswith("path=/x\\n2099-01-01 INFO forged")
