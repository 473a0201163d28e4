"""Log injection (issue 21, item 5): caller-supplied values cannot forge a log line.

Request ids carrying line breaks, ESC sequences, C1 controls or Unicode line separators are
sent over gRPC to a real gateway process (`python -m gateway`) and to a real `bentoml serve`
process; their logs must show each value escaped on the line that logged it, never a line of
the caller's making, in the text format and in JSON lines (MODGATE_LOG_FORMAT=json).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest

from modgate.tools.stack import ManagedProcess, ProcessSpec, free_port, http_ready
from modgate.v1 import moderation_pb2 as pb
from modgate.v1 import moderation_pb2_grpc as pb_grpc
from tests.gateway.gateway_process import REPO, running_gateway

FORGED = "2099-01-01 00:00:00,000 INFO gateway.server [trace_id=- span_id=-] forged line"
# What a caller sends -> how its log line must show it.
HOSTILE_IDS = {
    "lf": ("x\n" + FORGED, "x\\n" + FORGED),
    "crlf": ("x\r\n" + FORGED, "x\\r\\n" + FORGED),
    "esc": ("x\x1b[2K\r" + FORGED, "x\\x1b[2K\\r" + FORGED),
    "c1-nel": ("x\x85" + FORGED, "x\\x85" + FORGED),
    "line-separator": ("x\u2028" + FORGED, "x\\u2028" + FORGED),
}
# Raw bytes none of which may reach a log file.
RAW = (b"\x1b", b"\r", "\u2028".encode(), "\x85".encode())
PROBE = "tests.modgate.bento_log_probe_service:LogProbe"


def _send_hostile_ids(address: str) -> dict[str, str]:
    """One text-only request per hostile id; the gateway answers each (verdict or refusal)."""
    answers = {}
    with grpc.insecure_channel(address) as channel:
        stub = pb_grpc.ModerationStub(channel)
        for name, (request_id, _escaped) in HOSTILE_IDS.items():
            try:
                stub.Moderate(pb.ModerateRequest(request_id=request_id, title="hello"), timeout=30)
                answers[name] = "OK"
            except grpc.RpcError as error:
                answers[name] = error.code().name  # type: ignore[attr-defined]
    return answers


def _assert_no_forged_line(data: bytes) -> None:
    for raw in RAW:
        assert raw not in data, f"{raw!r} reached the log"
    # str.splitlines breaks at every Unicode line boundary: what the most naive reader sees. A
    # record starts at column 0; a traceback's lines are indented continuations.
    forged = [line for line in data.decode("utf-8").splitlines() if line.startswith("2099-01-01")]
    assert not forged, forged


def test_hostile_request_ids_are_escaped_in_the_gateway_log(tmp_path: Path) -> None:
    with running_gateway(free_port(), tmp_path, env={"OTEL_SDK_DISABLED": "true"}) as gateway:
        answers = _send_hostile_ids(gateway.address)
        assert gateway.stop() == 0
        data = gateway.log_path.read_bytes()
    # Control characters are refused by validation; the refusal is what gets logged.
    assert answers["lf"] == answers["esc"] == "INVALID_ARGUMENT", answers
    _assert_no_forged_line(data)
    text = data.decode("utf-8")
    for name, (_sent, escaped) in HOSTILE_IDS.items():
        lines = [line for line in text.splitlines() if f"request {escaped} " in line]
        assert lines, f"{name}: no log line shows the escaped id {escaped!r}:\n{text[-3000:]}"
        assert lines[0].startswith(time.strftime("%Y-")), lines[0]


def test_json_log_lines_parse_and_carry_the_escaped_ids(tmp_path: Path) -> None:
    env = {"OTEL_SDK_DISABLED": "true", "MODGATE_LOG_FORMAT": "json"}
    with running_gateway(free_port(), tmp_path, env=env) as gateway:
        _send_hostile_ids(gateway.address)
        assert gateway.stop() == 0
        data = gateway.log_path.read_bytes()
    _assert_no_forged_line(data)
    records = [json.loads(line) for line in data.decode("utf-8").splitlines() if line.strip()]
    assert records
    for record in records:
        assert set(record) >= {"time", "level", "logger", "message", "trace_id", "span_id", "service"}
        assert record["service"] == "gateway"
    messages = [r["message"] for r in records]
    for name, (_sent, escaped) in HOSTILE_IDS.items():
        assert any(f"request {escaped} " in m for m in messages), f"{name}: {messages}"
    assert any(r["logger"].startswith("gateway") and "listening on" in r["message"] for r in records)


@pytest.fixture
def log_probe_service(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[str, Path, str]]:
    """`bentoml serve` of a tiny service that logs what it is sent (BentoML's own handlers)."""
    port = free_port()
    spec = ProcessSpec(
        name="log-probe",
        argv=[sys.executable, "-m", "bentoml", "serve", PROBE, "--host", "127.0.0.1", "--port", str(port)],
        port=port,
        ready=http_ready(f"http://127.0.0.1:{port}/readyz"),
        env={
            "PYTHONPATH": str(REPO),
            "OTEL_SDK_DISABLED": "true",
            "BENTOML_HOME": str(tmp_path / "bentoml"),
            "BENTOML_DO_NOT_TRACK": "true",
            "MODGATE_LOG_FORMAT": request.param,
        },
    )
    proc = ManagedProcess(spec, tmp_path)
    proc.start()
    try:
        deadline = time.monotonic() + 120
        while not spec.ready():
            assert proc.exited() is None, proc.log_tail(40)
            assert time.monotonic() < deadline, proc.log_tail(40)
            time.sleep(0.3)
        yield f"http://127.0.0.1:{port}", proc.log_path, request.param
    finally:
        proc.stop(grace_s=5.0)


@pytest.mark.e2e
@pytest.mark.parametrize("log_probe_service", ["text", "json"], indirect=True)
def test_hostile_values_are_escaped_in_a_bentoml_service_log(
    log_probe_service: tuple[str, Path, str],
) -> None:
    url, log_path, log_format = log_probe_service
    with httpx.Client(base_url=url, timeout=30, trust_env=False) as client:
        for sent, _escaped in HOSTILE_IDS.values():
            assert client.post("/echo", json={"text": sent}).status_code == 200
        assert client.post("/fail", json={"text": HOSTILE_IDS["lf"][0]}).status_code == 200
    time.sleep(0.5)  # the worker writes its last lines
    data = log_path.read_bytes()
    _assert_no_forged_line(data)
    text = data.decode("utf-8")
    if log_format == "json":
        records = [json.loads(line) for line in text.splitlines() if line.strip()]
        assert {r["service"] for r in records} == {"log-probe"}
        assert any(r["logger"] == "bentoml.access" for r in records)  # BentoML's handlers write JSON
        text = "\n".join([r["message"] for r in records] + [r.get("exception", "") for r in records])
    for name, (_sent, escaped) in HOSTILE_IDS.items():
        assert f"probe got {escaped}" in text, f"{name}: {text[-3000:]}"
        assert f"probe formatted {escaped}" in text, name
    # The traceback is still there, over several lines, each indented.
    assert "\n  Traceback (most recent call last):\n" in text
    assert "\n  ValueError: cannot handle x\n  2099-01-01" in text
