"""Distributed tracing across real processes (issue 7 acceptance).

A traced local stack (trace store + speech/vision/text services + gateway, as `modgate up`
runs it) on free ports; a traced client process calls it. One request must give one trace:
spans from every process, one tree rooted at the client span, children inside their parents,
inference spans with batch size and model id, and `modgate trace` showing it nested. A failed
upstream shows as an error span; requests succeed with the collector down and with tracing
off everywhere (the shared untraced session stack from conftest).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from modgate.client import ModerationClient
from modgate.ports import DEFAULT_PORTS
from modgate.tools.samples import Sample, threat_video
from modgate.tools.stack import ManagedProcess, Stack, StackConfig, free_port, gateway_spec
from modgate.tools.tracestore import StoredSpan, TraceStore
from modgate.v1 import moderation_pb2 as pb

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
SERVICES = ("speech", "vision", "text")
TRACED_PROCESSES = ("gateway", *SERVICES)
# Every traced process samples everything here, whatever the developer's shell says.
TRACE_ENV = {
    "MODGATE_TRACING_ENABLED": "true",
    "OTEL_TRACES_SAMPLER": "parentbased_always_on",
    "OTEL_SERVICE_NAME": "",  # each process names itself (gateway, speech, ...)
}
TOLERANCE_NS = 2_000_000  # clock reads of different processes on one host
# A service's server span ends after its post-response work (BentoML removes the uploaded
# temp files once the body is sent), which the calling client span does not wait for.
POST_RESPONSE_NS = 200_000_000

CLIENT = """
import json, sys
from modgate import telemetry as t
from modgate.client import ModerationClient
h = t.setup_telemetry("e2e-client")
with ModerationClient(sys.argv[1], timeout_s=120) as client, t.span("client.moderate") as span:
    verdict = client.moderate_file(sys.argv[2], title="my channel", content_id="trace-e2e")
    print(json.dumps({"verdict_trace_id": verdict.trace_id, "trace_id": t.current_trace_id(),
                      "client_span": t.current_span_id(), "decision": verdict.decision}))
h.shutdown()
"""


class TracedStack:
    def __init__(self, stack: Stack, sample: Sample) -> None:
        self.stack = stack
        self.sample = sample
        self.db = stack.home / "traces.db"
        self.endpoint = f"http://127.0.0.1:{stack.config.ports['traces']}"

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.stack.config.ports[service]}"

    def client_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
        return {**env, **TRACE_ENV, "OTEL_EXPORTER_OTLP_ENDPOINT": self.endpoint, "PYTHONPATH": str(REPO)}

    def traced_request(self, target: str | None = None) -> dict[str, Any]:
        """Moderate the sample from a traced client process; returns ids and the decision."""
        result = subprocess.run(
            [sys.executable, "-c", CLIENT, target or self.stack.gateway_target, str(self.sample.path)],
            cwd=REPO,
            env=self.client_env(),
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert result.returncode == 0, f"client failed:\n{result.stdout}\n{result.stderr[-3000:]}"
        return dict(json.loads(result.stdout.strip().splitlines()[-1]))

    def complete_trace(self, trace_id: str, services: set[str], timeout_s: float = 30.0) -> list[StoredSpan]:
        """The trace once spans of every service arrived, no parent is missing and it settled."""
        deadline = time.monotonic() + timeout_s
        previous = -1
        with TraceStore(self.db) as store:
            while True:
                spans = store.spans_for_trace(trace_id)
                ids = {s.span_id for s in spans}
                complete = services <= {s.service_name for s in spans} and all(
                    not s.parent_span_id or s.parent_span_id in ids for s in spans
                )
                if (complete and len(spans) == previous) or time.monotonic() > deadline:
                    return spans
                previous = len(spans) if complete else -1
                time.sleep(0.5)


@pytest.fixture(scope="module")
def traced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TracedStack]:
    home = tmp_path_factory.mktemp("traced-stack")
    config = StackConfig(
        ports={name: free_port() for name in DEFAULT_PORTS},
        home=home,
        trace_store=True,
        env={name: dict(TRACE_ENV) for name in TRACED_PROCESSES},
    )
    stack = Stack(config)
    stack.start(timeout_s=600)
    try:
        sample = threat_video(home / "threat.mp4")
        with ModerationClient(stack.gateway_target, timeout_s=120) as client:
            client.moderate_file(sample.path)  # warm-up: first-use costs stay out of the traced request
        yield TracedStack(stack, sample)
    finally:
        stack.stop()


@pytest.fixture(scope="module")
def traced_request(traced: TracedStack) -> tuple[dict[str, Any], list[StoredSpan]]:
    result = traced.traced_request()
    spans = traced.complete_trace(result["trace_id"], {"e2e-client", *TRACED_PROCESSES})
    return result, spans


def _within_parent(spans: list[StoredSpan]) -> list[str]:
    by_id = {s.span_id: s for s in spans}
    bad = []
    for s in spans:
        parent = by_id.get(s.parent_span_id)
        if parent is None:
            continue
        remote_server = s.kind == "SERVER" and parent.kind == "CLIENT"
        end_slack = POST_RESPONSE_NS if remote_server else TOLERANCE_NS
        if not (parent.start_ns - TOLERANCE_NS <= s.start_ns and s.end_ns <= parent.end_ns + end_slack):
            starts, ends = (s.start_ns - parent.start_ns) / 1e6, (s.end_ns - parent.end_ns) / 1e6
            bad.append(
                f"{s.service_name}/{s.name} outside {parent.service_name}/{parent.name}: "
                f"starts {starts:+.2f} ms, ends {ends:+.2f} ms"
            )
    return bad


def test_one_request_is_one_tree_of_spans_across_the_processes(
    traced_request: tuple[dict[str, Any], list[StoredSpan]],
) -> None:
    result, spans = traced_request
    trace_id = result["trace_id"]
    assert result["verdict_trace_id"] == trace_id  # the verdict carries the caller's trace id
    assert result["decision"] in (pb.DECISION_REVIEW, pb.DECISION_BLOCK)

    processes = {(s.resource["service.name"], s.resource["process.pid"]) for s in spans}
    assert {name for name, _ in processes} == {"e2e-client", *TRACED_PROCESSES}
    assert len(processes - {p for p in processes if p[0] == "e2e-client"}) >= 4

    # One tree: the client span is the only root and every parent is present.
    ids = {s.span_id for s in spans}
    roots = [s for s in spans if not s.parent_span_id or s.parent_span_id not in ids]
    assert [(r.name, r.service_name, r.span_id) for r in roots] == [
        ("client.moderate", "e2e-client", result["client_span"])
    ]
    assert _within_parent(spans) == []

    def find(service: str, predicate: Callable[[StoredSpan], bool]) -> list[StoredSpan]:
        return [s for s in spans if s.service_name == service and predicate(s)]

    [server] = find("gateway", lambda s: s.kind == "SERVER")
    assert server.name == "/modgate.v1.Moderation/Moderate" and server.parent_span_id == result["client_span"]
    [split] = find("gateway", lambda s: s.name == "split")
    assert split.attributes["modgate.frame_count"] > 0 and split.attributes["modgate.stream_count"] >= 2
    for service in SERVICES:
        calls = find("gateway", lambda s, svc=service: s.name == f"upstream {svc}")
        assert calls, f"no upstream span for {service}"
        for call in calls:
            assert call.attributes["modgate.variant"] == "stable"
            assert call.attributes["modgate.retries"] == 0
            assert call.attributes["modgate.breaker.state"] == "closed"
        # The service's entry server span hangs under the gateway's HTTP client span for it
        # (vision's encoder is a BentoML dependency: its own process, called by vision).
        service_servers = find(service, lambda s: s.kind == "SERVER")
        assert any(by_parent_service(spans, s) == "gateway" for s in service_servers), service
        inference = find(service, lambda s: "modgate.batch_size" in s.attributes)
        assert inference, f"{service}: no inference span with a batch size"
        for span in inference:
            assert span.attributes["modgate.batch_size"] >= 1
            assert "@" in span.attributes["modgate.model.id"], span.attributes
    [fusion] = find("gateway", lambda s: s.name == "fusion")
    assert fusion.attributes["modgate.decision"] in ("REVIEW", "BLOCK")
    # The transcript goes on to the text service inside the same trace.
    assert len(find("gateway", lambda s: s.name == "upstream text")) >= 2


def by_parent_service(spans: list[StoredSpan], span: StoredSpan) -> str:
    parents = [s for s in spans if s.span_id == span.parent_span_id]
    return parents[0].service_name if parents else ""


def test_gateway_log_lines_carry_the_trace_id(
    traced: TracedStack, traced_request: tuple[dict[str, Any], list[StoredSpan]]
) -> None:
    trace_id = traced_request[0]["trace_id"]
    log = (traced.stack.log_dir / "gateway.log").read_text(encoding="utf-8", errors="replace")
    assert f"trace_id={trace_id}" in log


def test_modgate_trace_prints_every_service_nested(
    traced: TracedStack, traced_request: tuple[dict[str, Any], list[StoredSpan]]
) -> None:
    trace_id = traced_request[0]["trace_id"]

    def modgate_trace(*args: str) -> str:
        out = subprocess.run(
            [sys.executable, "-m", "modgate.tools.cli", "trace", *args, "--db", str(traced.db)],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode == 0, out.stderr
        return out.stdout

    text = modgate_trace(trace_id)
    header, _columns, *rows = text.splitlines()
    assert header.startswith(f"trace {trace_id}") and "e2e-client, gateway, speech, text, vision" in header
    assert rows[0].split()[:1] == ["0.0"] and "client.moderate" in rows[0]
    for service in SERVICES:
        assert any(f" {service} " in row for row in rows), f"{service} missing from the waterfall"

    listed = json.loads(modgate_trace(trace_id, "--json"))["spans"]
    assert {s["service_name"] for s in listed} == {"e2e-client", *TRACED_PROCESSES}
    depth = {s["span_id"]: s["depth"] for s in listed}
    by_id = {s["span_id"]: s for s in listed}
    for s in listed:
        if s["parent_span_id"]:
            parent = by_id[s["parent_span_id"]]
            assert s["depth"] == depth[parent["span_id"]] + 1
            assert parent["offset_ms"] - 2 <= s["offset_ms"]
            slack_ms = POST_RESPONSE_NS / 1e6 if (s["kind"], parent["kind"]) == ("SERVER", "CLIENT") else 2
            assert s["offset_ms"] + s["duration_ms"] <= parent["offset_ms"] + parent["duration_ms"] + slack_ms
    # Service server spans sit deeper than the gateway span that called them.
    gateway_depth = min(s["depth"] for s in listed if s["service_name"] == "gateway")
    for service in SERVICES:
        assert min(s["depth"] for s in listed if s["service_name"] == service) > gateway_depth


def test_a_failed_upstream_shows_as_an_error_span(traced: TracedStack, tmp_path: Path) -> None:
    # A second gateway whose vision upstream is a closed port; speech and text are real.
    upstreams = tmp_path / "upstreams.yaml"
    dead = f"http://127.0.0.1:{free_port()}"
    upstreams.write_text(
        f'speech:\n  stable: {{url: "{traced.url("speech")}"}}\n'
        f'vision:\n  stable: {{url: "{dead}"}}\n'
        f'text:\n  stable: {{url: "{traced.url("text")}"}}\n',
        encoding="utf-8",
    )
    port = free_port()
    env = {
        **TRACE_ENV,
        "PYTHONUNBUFFERED": "1",
        "OTEL_EXPORTER_OTLP_ENDPOINT": traced.endpoint,
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
    }
    spec = gateway_spec(
        port,
        metrics_port=free_port(),
        upstreams_file=upstreams,
        python=sys.executable,
        env=env,
        name="gw-dead",
    )
    proc = ManagedProcess(spec, tmp_path)
    proc.start()
    try:
        deadline = time.monotonic() + 90
        while not spec.ready():
            assert proc.exited() is None, proc.log_tail(40)
            assert time.monotonic() < deadline, "gateway not ready"
            time.sleep(0.3)
        result = traced.traced_request(f"127.0.0.1:{port}")
        spans = traced.complete_trace(result["trace_id"], {"e2e-client", "gateway", "speech", "text"})
    finally:
        proc.stop(grace_s=5.0)
    assert result["verdict_trace_id"] == result["trace_id"]  # a (degraded) verdict still came back
    failed = [s for s in spans if s.name == "upstream vision"]
    assert failed and all(s.status_code == "ERROR" for s in failed)
    assert failed[0].attributes["error.type"] in ("connect", "circuit_open", "timeout")
    assert "vision" in failed[0].status_message
    assert not any(s.service_name == "vision" for s in spans)
    assert _within_parent(spans) == []


def test_requests_succeed_with_the_collector_down(traced: TracedStack) -> None:
    store = traced.stack.processes["traces"]
    store.stop(grace_s=5.0)
    try:
        with ModerationClient(traced.stack.gateway_target, timeout_s=120) as client:
            verdicts = [client.moderate_file(traced.sample.path) for _ in range(2)]
        for verdict in verdicts:
            assert verdict.decision in (pb.DECISION_REVIEW, pb.DECISION_BLOCK)
            assert len(verdict.trace_id) == 32  # still traced; the spans are dropped
    finally:
        store.start()
        traced.stack.wait_ready(["traces"], timeout_s=60)


def test_requests_succeed_with_tracing_off_everywhere(gateway: Any, threat: Sample) -> None:
    # conftest's session stack runs every process with OTEL_SDK_DISABLED=true.
    with gateway.client(timeout_s=120) as client:
        verdict = client.moderate_file(threat.path)
    assert verdict.decision in (pb.DECISION_REVIEW, pb.DECISION_BLOCK)
    assert verdict.trace_id == ""
