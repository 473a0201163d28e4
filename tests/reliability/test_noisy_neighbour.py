"""One within-limits caller must not degrade the others (issue 21, item 1), on real processes.

The real text service (`bentoml serve`, one model thread as `modgate up` runs it here) and a
real gateway with its default limits and caller tokens (so the two callers are two identities).
Normal callers send single-title threats; then, for a few seconds, a neighbour also sends what
was inside the old limits (5,000 caption cues of 2,000 characters) and the largest text request
the gateway now admits, from two connections at once.

At f63e1d4 the 5,000-cue request went to the text service as 40 parallel calls of 256,000
characters: the service answered 503 "process is overloaded", the text breaker opened and the
others' threats came back REVIEW with TEXT FAILED / TIMED_OUT; the gateway kept retrying that
request's calls after it had answered. Now: the over-cost request is RESOURCE_EXHAUSTED naming
the limit, the admitted one yields to the small requests, the others' verdicts are unharmed,
and no text call of anybody's runs once every answer is in.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import grpc
import httpx
import pytest

from gateway.auth import token_digest
from modgate.tools.load import CallerGroup, Work
from modgate.tools.neighbour import caption_request, compare, threat_works
from modgate.tools.stack import ManagedProcess, free_port, gateway_spec, service_spec
from modgate.v1 import moderation_pb2_grpc as pb_grpc
from tests.reliability.conftest import QUIET, wait_serving

OTHERS_TOKEN = "others-token-0123456789abcdef"
NEIGHBOUR_TOKEN = "neighbour-token-0123456789abcdef"
LARGEST_ADMITTED_CUES = 25  # 25 x 2,000 characters = the default MAX_REQUEST_TEXT_UNITS of 50


@dataclass
class TextStack:
    target: str
    metrics_url: str

    def metric(self, name: str, **labels: str) -> float:
        total = 0.0
        for line in httpx.get(self.metrics_url, timeout=5, trust_env=False).text.splitlines():
            head, _, value = line.rpartition(" ")
            if (head == name or head.startswith(name + "{")) and all(
                f'{k}="{v}"' in head for k, v in labels.items()
            ):
                total += float(value)
        return total


def _wait_ready(procs: list[ManagedProcess], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    for proc in procs:
        while not proc.spec.ready():
            if proc.exited() is not None:
                raise RuntimeError(f"{proc.name} exited while starting:\n{proc.log_tail(40)}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{proc.name} not ready in {timeout_s} s:\n{proc.log_tail(40)}")
            time.sleep(0.2)


@pytest.fixture(scope="module")
def text_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TextStack]:
    home = tmp_path_factory.mktemp("neighbour")
    tokens = home / "tokens.yaml"
    tokens.write_text(
        f"{token_digest(OTHERS_TOKEN)}: {{caller: others, policies: ['*']}}\n"
        f"{token_digest(NEIGHBOUR_TOKEN)}: {{caller: neighbour, policies: ['*']}}\n",
        encoding="utf-8",
    )
    text_port, port, metrics_port = free_port(), free_port(), free_port()
    upstreams = home / "upstreams.yaml"
    # Text-only requests: speech and vision are never called.
    upstreams.write_text(
        'speech: {stable: {url: "http://127.0.0.1:9"}}\nvision: {stable: {url: "http://127.0.0.1:9"}}\n'
        f'text: {{stable: {{url: "http://127.0.0.1:{text_port}"}}}}\n',
        encoding="utf-8",
    )
    text_env = {**QUIET, "MODGATE_TEXT_THREADS": "1", "OMP_NUM_THREADS": "1"}
    gateway_env = {
        **QUIET,
        "MODGATE_GATEWAY_AUTH_TOKENS_FILE": str(tokens),
        "MODGATE_GATEWAY_SPLIT_WORKERS": "0",
    }
    procs = [
        ManagedProcess(service_spec("text", text_port, python=sys.executable, env=text_env), home),
        ManagedProcess(
            gateway_spec(
                port,
                metrics_port=metrics_port,
                upstreams_file=upstreams,
                python=sys.executable,
                env=gateway_env,
            ),
            home,
        ),
    ]
    try:
        for proc in procs:
            proc.start()
        _wait_ready(procs, timeout_s=300)
        # The gateway started with the text service still loading: text is unhealthy to it until
        # its own readiness probes pass, shortly after the service's /readyz does.
        wait_serving(f"127.0.0.1:{port}", ["modgate.v1.Moderation/TEXT"], timeout_s=30)
        yield TextStack(f"127.0.0.1:{port}", f"http://127.0.0.1:{metrics_port}/metrics")
    finally:
        for proc in reversed(procs):
            proc.stop(grace_s=5.0)


@pytest.mark.timeout(600)
def test_a_within_limits_neighbour_does_not_degrade_the_others(text_stack: TextStack) -> None:
    over_cost = caption_request(5000)  # 10,000,000 characters: inside the old validation limits
    largest = caption_request(LARGEST_ADMITTED_CUES)

    others = CallerGroup("others", threat_works(), clients=3, token=OTHERS_TOKEN, deadline_s=10.0)
    neighbour = CallerGroup(
        "neighbour",
        [Work("text", over_cost), Work("text", largest)],
        clients=2,
        token=NEIGHBOUR_TOKEN,
        deadline_s=10.0,
    )
    report = compare(text_stack.target, others, neighbour, duration_s=8.0, say=print)
    answered_at = time.monotonic()
    without, beside, heavy = report["without_neighbour"], report["with_neighbour"], report["neighbour"]
    print(f"\nothers alone: {without}\nothers beside the neighbour: {beside}\nneighbour: {heavy}")

    # The others: every verdict formed with TEXT run, as alone, in a bounded time.
    assert without["served_rate"] == 1.0, without["modality_states"]
    assert beside["served_rate"] == 1.0, (beside["statuses"], beside["modality_states"])
    assert beside["requests"] >= 6
    assert beside["served_p95_ms"] <= max(3 * without["served_p95_ms"], without["served_p95_ms"] + 1500)

    # The neighbour: the over-cost request is refused at once, naming the limit; the largest
    # admitted one is served or runs out of its own deadline, never an error.
    assert heavy["statuses"].get("RESOURCE_EXHAUSTED", 0) >= 1
    assert set(heavy["statuses"]) <= {"OK", "RESOURCE_EXHAUSTED", "DEADLINE_EXCEEDED"}, heavy["statuses"]
    assert heavy["hung"] == 0

    # The text service was never overloaded and the breaker never opened.
    assert text_stack.metric("modgate_gateway_upstream_errors_total", service="text", kind="http_5xx") == 0
    assert text_stack.metric("modgate_gateway_breaker_state", service="text") == 0

    # Nothing of anybody's request runs after its answer: no text call starts once all are in.
    calls = text_stack.metric("modgate_gateway_upstream_calls_total", service="text")
    retries = text_stack.metric("modgate_gateway_upstream_retries_total", service="text")
    time.sleep(max(0.0, answered_at + 3.0 - time.monotonic()))
    assert text_stack.metric("modgate_gateway_upstream_calls_total", service="text") == calls
    assert text_stack.metric("modgate_gateway_upstream_retries_total", service="text") == retries


def test_the_over_cost_request_is_refused_at_once_naming_the_limit(text_stack: TextStack) -> None:
    calls = text_stack.metric("modgate_gateway_upstream_calls_total", service="text")
    with grpc.insecure_channel(text_stack.target, options=[("grpc.max_send_message_length", 64 << 20)]) as ch:
        started = time.monotonic()
        with pytest.raises(grpc.RpcError) as refused:
            pb_grpc.ModerationStub(ch).Moderate(
                caption_request(5000), timeout=30, metadata=(("authorization", f"Bearer {NEIGHBOUR_TOKEN}"),)
            )
        elapsed = time.monotonic() - started
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "MODGATE_GATEWAY_MAX_REQUEST_TEXT_UNITS" in refused.value.details()
    assert "10,000,000 text characters" in refused.value.details()
    assert elapsed < 5.0
    assert text_stack.metric("modgate_gateway_upstream_calls_total", service="text") == calls
