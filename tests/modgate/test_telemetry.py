"""modgate.telemetry in real processes: export, resource, sampling, logs, propagation, failure modes."""

from __future__ import annotations

import json
import socket
import time

import pytest

from modgate.telemetry import TelemetryConfig, bentoml_tracing_config
from modgate.tools.tracestore import TraceStore
from modgate.tools.tracestore.process import TraceStoreProcess
from tests.modgate.conftest import clean_env, run_python, wait_for_spans


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nothing listens once the socket is closed


def test_collector_down_drops_spans_without_failing_or_slowing_work() -> None:
    code = """
import json, time
from modgate import telemetry as t
h = t.setup_telemetry("unit-down")
t0 = time.perf_counter()
ids = set()
for i in range(300):
    with t.span("request", {"i": i}):
        with t.span("work"):
            ids.add(t.current_trace_id())
work_s = time.perf_counter() - t0
time.sleep(1.2)  # let the batch processor try (and fail) to export
t1 = time.perf_counter()
h.shutdown()
print(json.dumps({"work_s": work_s, "shutdown_s": time.perf_counter() - t1, "traces": len(ids)}))
"""
    env = clean_env(OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{_closed_port()}")
    started = time.monotonic()
    result = run_python(code, env)
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["traces"] == 300  # every request still got its own valid trace id
    assert figures["work_s"] < 1.0  # 600 spans; export failures happen off the request path
    assert figures["shutdown_s"] < 5.0  # bounded by the short export timeout
    assert time.monotonic() - started < 20.0
    assert "Failed to export" in result.stderr  # the drop is visible, not silent


@pytest.mark.parametrize("switch", [{"MODGATE_TRACING_ENABLED": "false"}, {"OTEL_SDK_DISABLED": "true"}])
def test_tracing_off_exports_nothing_and_installs_no_interceptors(
    trace_store: TraceStoreProcess, switch: dict[str, str]
) -> None:
    code = """
import httpx
from modgate import telemetry as t
h = t.setup_telemetry("unit-off")
with t.span("request"):
    print(repr(t.current_trace_id()), h.enabled, t.grpc_aio_server_interceptors())
    client = httpx.Client()
    assert t.instrument_httpx_client(client) is client
    assert not getattr(client, "_is_instrumented_by_opentelemetry", False)
h.shutdown()
"""
    result = run_python(code, clean_env(**trace_store.otel_env(), **switch))
    assert result.stdout.strip() == "'' False []"
    time.sleep(1.0)
    with TraceStore(trace_store.db_path) as store:
        assert store.span_count() == 0


def test_resource_attributes_name_service_version_and_variant(trace_store: TraceStoreProcess) -> None:
    code = """
from modgate import telemetry as t
h = t.setup_telemetry("unit-res", service_version="9.9.9")
assert t.setup_telemetry("unit-res") is h  # idempotent
with t.span("s"):
    print(t.current_trace_id())
h.shutdown()
"""
    env = clean_env(
        **trace_store.otel_env(),
        MODGATE_VARIANT="canary",
        MODGATE_ENVIRONMENT="ci",
        OTEL_RESOURCE_ATTRIBUTES="k8s.pod.name=pod-1,modgate.variant=ignored",
    )
    trace_id = run_python(code, env).stdout.strip()
    [span] = wait_for_spans(trace_store.db_path, trace_id, 1)
    assert span.resource["service.name"] == "unit-res"
    assert span.resource["service.version"] == "9.9.9"
    assert span.resource["modgate.variant"] == "canary"
    assert span.resource["deployment.environment"] == "ci"
    assert span.resource["process.pid"] > 0
    assert span.resource["k8s.pod.name"] == "pod-1"  # OTEL_RESOURCE_ATTRIBUTES merged in

    # A deployment's OTEL_SERVICE_NAME (the chart sets modgate-<component>) wins over the code's.
    renamed = run_python(code, {**env, "OTEL_SERVICE_NAME": "modgate-unit"}).stdout.strip()
    [span] = wait_for_spans(trace_store.db_path, renamed, 1)
    assert span.resource["service.name"] == "modgate-unit"


def test_parent_based_sampling_lets_the_callers_decision_win(trace_store: TraceStoreProcess) -> None:
    # Ratio 0 for local roots: only spans under a sampled remote parent are kept.
    code = """
from opentelemetry import propagate
from modgate import telemetry as t
h = t.setup_telemetry("unit-sampling")
with t.span("local-root"):
    print(t.current_trace_id())
for flags in ("01", "00"):
    tid = ("a" if flags == "01" else "b") * 32
    ctx = propagate.extract({"traceparent": f"00-{tid}-00f067aa0ba902b7-{flags}"})
    with t.get_tracer("x").start_as_current_span(f"child-{flags}", context=ctx):
        print(t.current_trace_id())
h.shutdown()
"""
    env = clean_env(
        **trace_store.otel_env(), OTEL_TRACES_SAMPLER="parentbased_traceidratio", OTEL_TRACES_SAMPLER_ARG="0"
    )
    local_root, sampled, unsampled = run_python(code, env).stdout.split()
    assert sampled == "a" * 32 and unsampled == "b" * 32  # the caller's trace id continues either way
    [kept] = wait_for_spans(trace_store.db_path, sampled, 1)
    assert (kept.name, kept.parent_span_id) == ("child-01", "00f067aa0ba902b7")
    with TraceStore(trace_store.db_path) as store:
        assert store.spans_for_trace(unsampled) == []
        assert store.spans_for_trace(local_root) == []
        assert store.span_count() == 1


def test_every_log_line_carries_the_trace_and_span_id() -> None:
    code = """
import logging
from modgate import telemetry as t
t.setup_telemetry("unit-logs", log_level="INFO")
log = logging.getLogger("unit")
log.info("before")
with t.span("s"):
    log.info("inside")
    print(t.current_trace_id(), t.current_span_id())
"""
    result = run_python(code, clean_env(OTEL_TRACES_EXPORTER="none"))
    trace_id, span_id = result.stdout.split()
    lines = result.stderr.splitlines()
    assert any(line.endswith("unit [trace_id=- span_id=-] before") for line in lines)
    assert any(line.endswith(f"unit [trace_id={trace_id} span_id={span_id}] inside") for line in lines)


def test_httpx_client_injects_traceparent_and_records_a_client_span(trace_store: TraceStoreProcess) -> None:
    code = """
import http.server, threading, httpx
from modgate import telemetry as t
seen = {}
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        seen["traceparent"] = self.headers.get("traceparent")
        self.send_response(204); self.end_headers()
    def log_message(self, *a): pass
srv = http.server.HTTPServer(("127.0.0.1", 0), H)
threading.Thread(target=srv.serve_forever, daemon=True).start()
h = t.setup_telemetry("unit-httpx")
client = t.instrument_httpx_client(httpx.Client())
with t.span("caller"):
    client.get(f"http://127.0.0.1:{srv.server_address[1]}/score")
    print(t.current_trace_id(), t.current_span_id(), seen["traceparent"])
srv.shutdown()
h.shutdown()
"""
    trace_id, caller_span, traceparent = run_python(code, clean_env(**trace_store.otel_env())).stdout.split()
    spans = {s.name: s for s in wait_for_spans(trace_store.db_path, trace_id, 2)}
    client_span = spans["GET"]
    assert client_span.kind == "CLIENT" and client_span.parent_span_id == caller_span
    version, tp_trace, tp_parent, flags = traceparent.split("-")
    assert (version, tp_trace, tp_parent) == ("00", trace_id, client_span.span_id)
    assert int(flags, 16) & 0x01  # sampled (the SDK also sets W3C level-2 "random" bit 0x02)


def test_grpc_aio_interceptor_continues_the_callers_trace(trace_store: TraceStoreProcess) -> None:
    code = """
import asyncio, grpc
from modgate import telemetry as t
from modgate.v1 import moderation_pb2 as pb, moderation_pb2_grpc as pbg
t.setup_telemetry("unit-grpc-server")

class Servicer(pbg.ModerationServicer):
    async def Moderate(self, request, context):
        with t.span("fuse", {t.Attr.DECISION: "ALLOW"}):
            pass
        return pb.Verdict(trace_id=t.current_trace_id())

async def main():
    server = grpc.aio.server(interceptors=t.grpc_aio_server_interceptors())
    pbg.add_ModerationServicer_to_server(Servicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        tp = "00-" + "c" * 32 + "-1111111111111111-01"
        stub = pbg.ModerationStub(channel)
        verdict = await stub.Moderate(pb.ModerateRequest(), metadata=[("traceparent", tp)])
        print(verdict.trace_id)
    await server.stop(None)
    t.shutdown()

asyncio.run(main())
"""
    [returned] = run_python(code, clean_env(**trace_store.otel_env())).stdout.split()
    assert returned == "c" * 32  # the verdict's trace id is the caller's
    spans = {s.name: s for s in wait_for_spans(trace_store.db_path, returned, 2)}
    server_span = spans["/modgate.v1.Moderation/Moderate"]
    assert server_span.kind == "SERVER" and server_span.parent_span_id == "1111111111111111"
    assert spans["fuse"].parent_span_id == server_span.span_id
    assert server_span.service_name == "unit-grpc-server"


def test_bentoml_tracing_config_follows_the_otel_environment() -> None:
    http = bentoml_tracing_config(
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4999/",
            "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
            "OTEL_TRACES_SAMPLER_ARG": "0.25",
        }
    )
    assert http == {
        "tracing": {
            "sample_rate": 0.25,
            "excluded_urls": ["/livez", "/readyz", "/healthz", "/metrics"],
            "exporter_type": "otlp",
            "otlp": {"protocol": "http", "endpoint": "http://127.0.0.1:4999/v1/traces"},
            "timeout": 2,
        }
    }
    grpc = bentoml_tracing_config(
        {"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317"}
    )
    assert grpc["tracing"]["otlp"] == {
        "protocol": "grpc",
        "endpoint": "http://c:4317",
        "grpc": {"insecure": True},
    }
    assert bentoml_tracing_config({"MODGATE_TRACING_ENABLED": "false"}) == {}
    with pytest.raises(ValueError, match="OTEL_EXPORTER_OTLP_PROTOCOL"):
        TelemetryConfig.from_env({"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"})


def test_batch_spans_put_one_inference_span_under_each_batched_request(
    trace_store: TraceStoreProcess,
) -> None:
    # The batch runs in a stale context (as BentoML's dispatcher does); spans must still land
    # under each request that contributed items.
    code = """
import asyncio, json
from modgate import telemetry as t
t.setup_telemetry("unit-batch")
queue = []

async def request(i):
    with t.span(f"request-{i}"):
        fut = asyncio.get_running_loop().create_future()
        queue.append((i, t.capture_context(), fut))
        await fut
        return t.current_trace_id(), t.current_span_id()

async def main():
    with t.span("stale-first-request"):
        stale = t.capture_context()
    tasks = [asyncio.create_task(request(i)) for i in range(3)]
    await asyncio.sleep(0.05)
    from opentelemetry import context
    token = context.attach(stale)
    try:
        with t.batch_spans("model.infer", [c for _, c, _ in queue], batch_size=len(queue), model_id="m@1"):
            await asyncio.sleep(0.01)
    finally:
        context.detach(token)
    for _, _, fut in queue:
        fut.set_result(None)
    print(json.dumps([await task for task in tasks]))
    t.shutdown()

asyncio.run(main())
"""
    requests = json.loads(run_python(code, clean_env(**trace_store.otel_env())).stdout)
    assert len({trace_id for trace_id, _ in requests}) == 3
    for trace_id, request_span in requests:
        spans = {s.name: s for s in wait_for_spans(trace_store.db_path, trace_id, 2)}
        assert len(spans) == 2 and any(name.startswith("request-") for name in spans)
        infer = spans["model.infer"]
        assert infer.parent_span_id == request_span
        assert infer.attributes == {"modgate.batch_size": 3, "modgate.model.id": "m@1"}
        assert len(infer.links) == 2  # the other two requests in the same batch


def test_python_client_carries_the_callers_trace_into_the_gateway(trace_store: TraceStoreProcess) -> None:
    code = """
import asyncio, threading, grpc
from modgate import telemetry as t
from modgate.client import ModerationClient
from modgate.v1 import moderation_pb2 as pb, moderation_pb2_grpc as pbg
t.setup_telemetry("unit-client")

class Servicer(pbg.ModerationServicer):
    async def Moderate(self, request, context):
        return pb.Verdict(trace_id=t.current_trace_id())

ready, port = threading.Event(), []
async def serve(stop):
    server = grpc.aio.server(interceptors=t.grpc_aio_server_interceptors())
    pbg.add_ModerationServicer_to_server(Servicer(), server)
    port.append(server.add_insecure_port("127.0.0.1:0"))
    await server.start()
    ready.set()
    await stop.wait()
    await server.stop(None)

loop = asyncio.new_event_loop()
stop = asyncio.Event()
thread = threading.Thread(target=loop.run_until_complete, args=(serve(stop),))
thread.start()
ready.wait(10)
with ModerationClient(f"127.0.0.1:{port[0]}") as client, t.span("product-backend"):
    verdict = client.moderate_text("hello", timeout_s=10)
    print(verdict.trace_id, t.current_trace_id(), t.current_span_id())
loop.call_soon_threadsafe(stop.set)
thread.join(10)
t.shutdown()
"""
    returned, trace_id, client_span = run_python(code, clean_env(**trace_store.otel_env())).stdout.split()
    assert returned == trace_id
    spans = {s.name: s for s in wait_for_spans(trace_store.db_path, trace_id, 2)}
    assert spans["/modgate.v1.Moderation/Moderate"].parent_span_id == client_span
