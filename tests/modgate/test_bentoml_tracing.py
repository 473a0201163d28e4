"""A real `bentoml serve` process honours an incoming W3C traceparent and exports to the store."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from modgate.tools.tracestore import TraceStore
from modgate.tools.tracestore.process import TraceStoreProcess
from tests.modgate.conftest import REPO, clean_env, wait_for_spans

pytestmark = pytest.mark.e2e


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def probe_service(trace_store: TraceStoreProcess, tmp_path: Path) -> Iterator[str]:
    port = _free_port()
    bentoml = str(Path(sys.executable).with_name("bentoml"))
    log = open(tmp_path / "bentoml.log", "wb")  # noqa: SIM115 (closed in teardown)
    target = "tests.modgate.bento_probe_service:Probe"
    env = clean_env(
        **trace_store.otel_env(), BENTOML_HOME=str(tmp_path / "bentoml"), BENTOML_DO_NOT_TRACK="true"
    )
    proc = subprocess.Popen(
        [bentoml, "serve", target, "--host", "127.0.0.1", "--port", str(port)],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"

    def log_text() -> str:
        return (tmp_path / "bentoml.log").read_text(errors="replace")[-4000:]

    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"bentoml serve exited {proc.returncode}:\n{log_text()}")
            try:
                if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"bentoml serve not ready in 90 s:\n{log_text()}")
            time.sleep(0.3)
        yield url
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        log.close()


def test_bentoml_server_span_continues_the_incoming_trace(
    probe_service: str, trace_store: TraceStoreProcess
) -> None:
    trace_id, caller_span = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    response = httpx.post(
        probe_service + "/work",
        json={"text": "hi"},
        headers={"traceparent": f"00-{trace_id}-{caller_span}-01"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"trace_id": trace_id, "chars": 2}

    spans = wait_for_spans(trace_store.db_path, trace_id, 2)
    server = next(s for s in spans if s.kind == "SERVER")
    inference = next(s for s in spans if s.name == "probe.inference")
    assert server.parent_span_id == caller_span  # BentoML honoured the caller's context
    assert inference.parent_span_id == server.span_id
    assert inference.attributes == {"modgate.batch_size": 1, "modgate.model.id": "probe@0"}
    # One provider per process: BentoML's own span carries modgate's resource, not BentoML's.
    assert {s.service_name for s in spans} == {"bento-probe"}
    assert server.resource["service.namespace"] == "modgate"
    assert server.start_ns <= inference.start_ns and inference.end_ns <= server.end_ns
    # Per-ASGI-message chatter spans are not exported: just the server span and ours.
    assert sorted(s.name for s in spans) == ["POST /work", "probe.inference"]

    # Health probes are excluded from tracing.
    assert httpx.get(probe_service + "/readyz", timeout=5).status_code == 200
    time.sleep(1.0)
    with TraceStore(trace_store.db_path) as store:
        names = {s.name for t in store.trace_ids(50) for s in store.spans_for_trace(t)}
    assert not any("readyz" in n or "livez" in n for n in names), names


def test_keep_alive_requests_with_large_bodies_keep_their_own_traces(
    probe_service: str, trace_store: TraceStoreProcess
) -> None:
    # Over uvicorn's 64 KiB flow-control mark the next request on a keep-alive connection
    # used to inherit the previous request's context and land in its trace.
    body = {"text": "x" * 300_000}
    sent = [(f"{i:x}" * 32, f"{i:x}" * 16) for i in (1, 2, 3)]
    with httpx.Client(timeout=30) as client:  # one connection, reused
        for trace_id, parent in sent:
            response = client.post(
                probe_service + "/work", json=body, headers={"traceparent": f"00-{trace_id}-{parent}-01"}
            )
            assert response.json() == {"trace_id": trace_id, "chars": 300_000}
    for trace_id, parent in sent:
        spans = wait_for_spans(trace_store.db_path, trace_id, 2)
        [server] = [s for s in spans if s.name == "POST /work"]
        assert (server.kind, server.parent_span_id) == ("SERVER", parent)
        assert {s.trace_id for s in spans} == {trace_id}
        assert len([s for s in spans if s.name == "probe.inference"]) == 1
