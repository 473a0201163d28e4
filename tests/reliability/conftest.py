"""The real local stack for the reliability tests: three `bentoml serve` model services and the
gateway, started by modgate.tools.stack.Stack (the code behind `modgate up`) on free ports with a
scratch home, once for this package, supervised as `modgate up` supervises it (a killed process
is restarted with backoff), always stopped (process groups, workers included, wherever they run).

The gateway gets fewer slots than the load tests have callers, so backpressure shows, a short
breaker reset so a restarted service is tried again quickly, and 500 ms of its deadline kept
back for forming and sending the verdict (the 25 ms default is too little on two starved cores:
degraded verdicts then reach the caller just after its deadline).

Ports come from below the kernel's ephemeral range: a killed service's port must still be free
when it restarts, and any process on the machine binding port 0 could otherwise take it.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from modgate.tools.faults import restartable_ports
from modgate.tools.load import Work, default_works
from modgate.tools.stack import RestartPolicy, Stack, StackConfig

MAX_INFLIGHT = 3
GATEWAY_ENV = {
    "MODGATE_GATEWAY_MAX_INFLIGHT": str(MAX_INFLIGHT),
    "MODGATE_GATEWAY_MAX_QUEUED": "0",
    "MODGATE_GATEWAY_RETRY_AFTER_MS": "500",
    "MODGATE_GATEWAY_SPLIT_WORKERS": "1",
    "MODGATE_GATEWAY_BREAKER_FAILURE_THRESHOLD": "3",
    "MODGATE_GATEWAY_BREAKER_RESET_TIMEOUT_S": "1.0",
    "MODGATE_GATEWAY_DEADLINE_MARGIN_MS": "500",
}
QUIET = {"OTEL_SDK_DISABLED": "true", "PYTHONUNBUFFERED": "1"}
# Vision's model load after a restart takes minutes on two starved cores.
RESTARTS = RestartPolicy(ready_timeout_s=400.0, unhealthy_restart_s=400.0)
MODALITY_HEALTH = [f"modgate.v1.Moderation/{m}" for m in ("AUDIO", "VISUAL", "TEXT")]


def wait_serving(target: str, names: Sequence[str], timeout_s: float) -> None:
    """Until the gateway's health says SERVING for every name. A gateway started with the model
    services still loading finds them unhealthy; its own readiness probes pass shortly after the
    services' /readyz do, and until then their modalities fail at once."""
    deadline = time.monotonic() + timeout_s
    with grpc.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for name in names:
            while stub.Check(health_pb2.HealthCheckRequest(service=name), timeout=5).status != (
                health_pb2.HealthCheckResponse.SERVING
            ):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the gateway's {name} is not SERVING after {timeout_s} s")
                time.sleep(0.05)


@pytest.fixture(scope="package")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    home = tmp_path_factory.mktemp("reliability-stack")
    env = {name: dict(QUIET) for name in ("speech", "vision", "text", "gateway")}
    env["gateway"].update(GATEWAY_ENV)
    config = StackConfig(
        ports=restartable_ports(),
        home=home,
        trace_store=False,
        python=sys.executable,
        env=env,
    )
    running = Stack(config)
    running.start(timeout_s=300)
    running.supervise_in_background(policy=RESTARTS, say=lambda line: print(f"supervisor: {line}"))
    try:
        wait_serving(running.gateway_target, MODALITY_HEALTH, timeout_s=30)
        yield running
    finally:
        running.stop(grace_s=5.0)


@pytest.fixture(scope="package")
def works(tmp_path_factory: pytest.TempPathFactory) -> list[Work]:
    """Text-only requests and two small spoken videos (2-3 s)."""
    return default_works(Path(tmp_path_factory.mktemp("load-media")))
