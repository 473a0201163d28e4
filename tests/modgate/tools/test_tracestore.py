"""The local trace store (real receiver process) and `modgate trace` (real CLI process)."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request

from modgate.tools.tracestore import TraceStore
from modgate.tools.tracestore.process import TraceStoreProcess
from tests.modgate.conftest import REPO, clean_env, run_python, wait_for_spans

# outer (60+ ms) > middle (40+ ms) > inner (10+ ms, batch attrs) and a failing sibling of middle.
NESTED_SPANS = """
import time
from modgate import telemetry as t
h = t.setup_telemetry("unit-a")
with t.span("outer", {t.Attr.DECISION: "BLOCK"}):
    time.sleep(0.01)
    with t.span("middle", {t.Attr.VARIANT: "canary", t.Attr.RETRIES: 1}):
        time.sleep(0.01)
        with t.span("inner", {t.Attr.BATCH_SIZE: 8, t.Attr.MODEL_ID: "ViT-B-32@abc"}):
            time.sleep(0.01)
        time.sleep(0.01)
    try:
        with t.span("failing-call"):
            raise ConnectionError("upstream vision refused the connection")
    except ConnectionError:
        pass
    time.sleep(0.01)
    print(t.current_trace_id())
h.shutdown()
"""


def _modgate_trace(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modgate.tools.cli", "trace", *args],
        cwd=REPO,
        env=clean_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
    )


def _post(store: TraceStoreProcess, body: bytes, content_type: str, path: str = "/v1/traces") -> int:
    request = urllib.request.Request(
        store.endpoint + path, data=body, headers={"Content-Type": content_type}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_nested_spans_are_stored_and_printed_as_a_nested_waterfall(trace_store: TraceStoreProcess) -> None:
    trace_id = run_python(NESTED_SPANS, clean_env(**trace_store.otel_env())).stdout.strip()
    assert len(trace_id) == 32

    spans = {s.name: s for s in wait_for_spans(trace_store.db_path, trace_id, 4)}
    assert set(spans) == {"outer", "middle", "inner", "failing-call"}
    assert spans["outer"].parent_span_id == ""
    assert spans["middle"].parent_span_id == spans["outer"].span_id
    assert spans["inner"].parent_span_id == spans["middle"].span_id
    assert spans["failing-call"].parent_span_id == spans["outer"].span_id
    assert spans["failing-call"].status_code == "ERROR"
    assert "refused" in spans["failing-call"].status_message
    assert spans["failing-call"].events[0]["name"] == "exception"
    assert spans["inner"].attributes == {"modgate.batch_size": 8, "modgate.model.id": "ViT-B-32@abc"}
    assert {s.service_name for s in spans.values()} == {"unit-a"}

    out = _modgate_trace(trace_id, "--db", str(trace_store.db_path))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith(f"trace {trace_id}  4 spans  1 services (unit-a)")
    body = {name: next(line for line in lines[2:] if f" {name}" in line) for name in spans}
    # Depth shows as tree indentation; order is depth-first by start time.
    assert body["outer"].split("unit-a")[1].lstrip().startswith("outer")
    assert "└─ inner" in body["inner"] and "├─ middle" in body["middle"]
    assert "└─ failing-call" in body["failing-call"]
    assert [line for line in lines[2:]] == [body[n] for n in ("outer", "middle", "inner", "failing-call")]
    assert "batch=8" in body["inner"] and "model=ViT-B-32@abc" in body["inner"]
    assert "variant=canary" in body["middle"] and "retries=1" in body["middle"]
    assert "decision=BLOCK" in body["outer"]
    assert "ERROR: ConnectionError: upstream vision refused" in body["failing-call"]

    def offset_and_duration(line: str) -> tuple[float, float]:
        start, duration = line.split()[:2]
        return float(start), float(duration)

    timing = {name: offset_and_duration(line) for name, line in body.items()}
    assert timing["outer"][0] == 0.0
    for child, parent in (("middle", "outer"), ("inner", "middle"), ("failing-call", "outer")):
        (c_start, c_dur), (p_start, p_dur) = timing[child], timing[parent]
        assert p_start <= c_start and c_start + c_dur <= p_start + p_dur + 0.1, (child, parent)
    assert timing["outer"][1] >= 50.0 and timing["inner"][1] >= 10.0

    # No --db: `modgate up` keeps the store in $MODGATE_HOME, and `modgate trace` looks there.
    as_json = json.loads(
        _modgate_trace("--last", "--json", MODGATE_HOME=str(trace_store.db_path.parent)).stdout
    )
    assert as_json["trace_id"] == trace_id
    assert [(s["name"], s["depth"]) for s in as_json["spans"]] == [
        ("outer", 0),
        ("middle", 1),
        ("inner", 2),
        ("failing-call", 1),
    ]


def test_grpc_receiver_stores_spans(trace_store: TraceStoreProcess) -> None:
    env = clean_env(
        OTEL_EXPORTER_OTLP_PROTOCOL="grpc",
        OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{trace_store.grpc_port}",
    )
    code = (
        "from modgate import telemetry as t\nh = t.setup_telemetry('unit-grpc')\n"
        "with t.span('over-grpc'):\n    print(t.current_trace_id())\nh.shutdown()\n"
    )
    trace_id = run_python(code, env).stdout.strip()
    [span] = wait_for_spans(trace_store.db_path, trace_id, 1)
    assert (span.name, span.service_name) == ("over-grpc", "unit-grpc")


def test_malformed_bodies_get_400_and_the_store_keeps_working(trace_store: TraceStoreProcess) -> None:
    assert _post(trace_store, b"\xff\xfenot protobuf", "application/x-protobuf") == 400
    assert _post(trace_store, b"{not json", "application/json") == 400
    bad_id = b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz"}]}]}]}'
    assert _post(trace_store, bad_id, "application/json") == 400
    assert _post(trace_store, b"<xml/>", "text/xml") == 400
    assert _post(trace_store, b"", "application/x-protobuf", path="/v1/logs") == 404

    # OTLP/JSON (hex ids), with a span whose parent never arrives: shown as an orphan at the root.
    trace_id = "5b8efff798038103d269b633813fc60c"
    document = {
        "resourceSpans": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "json-cli"}}]},
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": trace_id,
                                "spanId": "eee19b7ec3c1b174",
                                "parentSpanId": "eee19b7ec3c1b173",
                                "name": "late-child",
                                "kind": 2,
                                "startTimeUnixNano": "1544712660000000000",
                                "endTimeUnixNano": "1544712661000000000",
                                "attributes": [{"key": "modgate.batch_size", "value": {"intValue": "3"}}],
                                "status": {"code": 2, "message": "boom"},
                            }
                        ]
                    }
                ],
            }
        ]
    }
    assert _post(trace_store, json.dumps(document).encode(), "application/json") == 200
    with TraceStore(trace_store.db_path) as store:
        [span] = store.spans_for_trace(trace_id)
    assert (span.service_name, span.kind, span.duration_ms, span.attributes) == (
        "json-cli",
        "SERVER",
        1000.0,
        {"modgate.batch_size": 3},
    )
    out = _modgate_trace(trace_id[:12], "--db", str(trace_store.db_path))
    assert out.returncode == 0, out.stderr
    [row] = out.stdout.splitlines()[2:]
    assert "(orphan: parent eee19b7ec3c1b173 missing)" in row and "ERROR: boom" in row and "batch=3" in row


def test_trace_command_explains_missing_database_and_unknown_trace(trace_store: TraceStoreProcess) -> None:
    missing = _modgate_trace("--last", "--db", str(trace_store.db_path.parent / "nope.db"))
    assert missing.returncode == 1 and "no trace database" in missing.stderr
    unknown = _modgate_trace("0" * 32, "--db", str(trace_store.db_path))
    assert unknown.returncode == 1 and "not found" in unknown.stderr
    both = _modgate_trace("abc", "--last", "--db", str(trace_store.db_path))
    assert both.returncode == 2
