"""Failures with real processes: a SIGKILLed service, a SIGKILLed worker whose supervisor lives on,
a service too slow for the deadline."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import grpc
import psutil
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from modgate.client import ModerationError, Options
from modgate.tools.samples import Sample
from modgate.tools.stack import ManagedProcess
from modgate.v1 import moderation_pb2 as pb
from tests.e2e.conftest import Gateway, Services, metric_value
from tests.gateway.gateway_process import REPO

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]


def status(verdict: pb.Verdict, modality: int) -> pb.ModalityStatus:
    return next(m for m in verdict.modalities if m.modality == modality)


def test_killed_speech_service_fails_audio_then_recovers(
    services: Services, gateway: Gateway, benign: Sample
) -> None:
    speech = services.processes.procs["speech"]
    speech.kill()  # SIGKILL to the service's whole process group
    assert speech.members() == []

    deadline_s = 10.0
    started = time.monotonic()
    with gateway.client(timeout_s=deadline_s) as client:
        verdict = client.moderate_file(benign.path)
    assert time.monotonic() - started < deadline_s
    audio = status(verdict, pb.MODALITY_AUDIO)
    assert audio.state == pb.MODALITY_STATE_FAILED
    assert "speech" in audio.reason
    # The default policy fails closed: a benign video with a failed modality goes to REVIEW.
    assert verdict.decision == pb.DECISION_REVIEW
    assert verdict.degraded
    assert any("AUDIO FAILED" in r and "on_failed=review" in r for r in verdict.reasons)
    assert status(verdict, pb.MODALITY_TEXT).state == pb.MODALITY_STATE_OK
    # Three connect failures (threshold 3 in these tests) opened speech's breaker.
    assert metric_value(gateway.metrics(), "modgate_gateway_breaker_state", service="speech") == 2

    # While open, the next request does not even try: it fails fast.
    started = time.monotonic()
    with gateway.client(timeout_s=deadline_s) as client:
        verdict = client.moderate_file(benign.path)
    assert "circuit open" in status(verdict, pb.MODALITY_AUDIO).reason

    services.processes.restart("speech")
    # Once the breaker's reset timeout (1 s here) passes, a probe goes through and closes it.
    recovered = None
    seen: list[str] = []
    until = time.monotonic() + 120
    while time.monotonic() < until:
        try:
            with gateway.client(timeout_s=60) as client:
                verdict = client.moderate_file(benign.path)
        except ModerationError as exc:  # a loaded machine may be slow on the first calls
            seen.append(str(exc))
            continue
        audio = status(verdict, pb.MODALITY_AUDIO)
        if audio.state == pb.MODALITY_STATE_OK:
            recovered = verdict
            break
        seen.append(audio.reason)
        time.sleep(0.5)
    assert recovered is not None, (
        f"AUDIO never came back after the speech service restarted: {seen[-3:]}\n{speech.log_tail(30)}"
    )
    assert recovered.decision == pb.DECISION_ALLOW
    assert metric_value(gateway.metrics(), "modgate_gateway_breaker_state", service="speech") == 0


def test_200ms_deadline_against_a_slow_service_answers_in_time(
    services: Services, start_gateway: Callable[..., Gateway], start_fake: Callable[..., str]
) -> None:
    slow = start_fake("slow-text", "slow", delay_s=5.0)
    upstreams = (
        f'speech:\n  stable: {{url: "{services.urls["speech"]}"}}\n'
        f'vision:\n  stable: {{url: "{services.urls["vision"]}"}}\n'
        f'text:\n  stable: {{url: "{slow}"}}\n'
    )
    gateway = start_gateway("gateway-slow-text", upstreams)
    with gateway.client() as client:
        for attempt in range(3):
            started = time.monotonic()
            try:
                verdict = client.moderate_text(f"see you at the match {attempt}", timeout_s=0.2)
            except ModerationError as exc:
                elapsed = time.monotonic() - started
                assert exc.code == grpc.StatusCode.DEADLINE_EXCEEDED
                assert elapsed < 0.3, elapsed
                continue
            elapsed = time.monotonic() - started
            assert elapsed < 0.3, elapsed
            # The policy's on_timeout=review: a degraded REVIEW verdict, not a silent ALLOW.
            text = status(verdict, pb.MODALITY_TEXT)
            assert text.state == pb.MODALITY_STATE_TIMED_OUT, text
            assert verdict.degraded
            assert verdict.decision == pb.DECISION_REVIEW
            assert any("on_timeout=review" in r for r in verdict.reasons)


# --- a dead BentoML worker (the supervisor lives on and holds the port) ----------------------------

HEALTH = "modgate.v1.Moderation"
# The modality each service's outage fails, and the other names it takes down with it.
MODALITY_OF = {"text": "TEXT", "vision": "VISUAL", "speech": "AUDIO"}
ALSO_DOWN = {"text": ("AUDIO",), "vision": (), "speech": ()}
PB_MODALITY = {"TEXT": pb.MODALITY_TEXT, "VISUAL": pb.MODALITY_VISUAL, "AUDIO": pb.MODALITY_AUDIO}
# The gateway's defaults: a probe round every second, 500 ms each, unhealthy after two in a row
# (the second right after the first).
DETECT_S = 1.0 + 2 * 0.5
# A respawned worker loads its model again: tens of seconds, minutes on a loaded machine.
RESPAWN_S = 300.0


def serving_worker(proc: ManagedProcess) -> psutil.Process:
    """The worker process that serves the service's port: not the supervisor (the group leader,
    which holds the listening socket and respawns workers), not a dependency's worker."""
    for member in proc.members()[1:]:
        with contextlib.suppress(psutil.Error):
            if any(
                c.status == psutil.CONN_LISTEN and c.laddr.port == proc.spec.port
                for c in member.net_connections("tcp")
            ):
                return member
    raise AssertionError(f"no worker of {proc.name} listens on port {proc.spec.port}: {proc.members()}")


def health_status(target: str, name: str) -> int:
    with grpc.insecure_channel(target) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=name), timeout=5
        )
    return reply.status


def grpcurl_status(target: str, name: str) -> str:
    grpcurl = shutil.which("grpcurl") or str(REPO / ".tools" / "bin" / "grpcurl")
    result = subprocess.run(
        [grpcurl, "-plaintext", "-d", json.dumps({"service": name}), target, "grpc.health.v1.Health/Check"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    return str(json.loads(result.stdout)["status"])


def moderate_one(
    gateway: Gateway, service: str, sample: Sample, timeout_s: float = 20
) -> tuple[pb.ModalityStatus, float]:
    """One request that needs only `service`'s modality; its status and the request's wall time."""
    modality = MODALITY_OF[service]
    started = time.monotonic()
    with gateway.client(timeout_s=timeout_s) as client:
        if service == "text":
            verdict = client.moderate_text("see you at the match tonight")
        else:
            skip = [m for m in ("AUDIO", "VISUAL", "TEXT") if m != modality]
            verdict = client.moderate_file(sample.path, options=Options(skip_modalities=skip))
    return status(verdict, PB_MODALITY[modality]), time.monotonic() - started


def wait_for(check: Callable[[], bool], timeout_s: float, what: str) -> float:
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < timeout_s, f"{what}: not within {timeout_s:.0f} s"
        time.sleep(0.02)
    return time.monotonic() - started


@pytest.mark.parametrize("service", ["text", "vision", "speech"])
def test_a_killed_worker_fails_its_modality_at_once_then_recovers(
    service: str, services: Services, gateway: Gateway, benign: Sample
) -> None:
    modality = MODALITY_OF[service]
    name = f"{HEALTH}/{modality}"
    proc = services.processes.procs[service]
    ran = (pb.MODALITY_STATE_OK, pb.MODALITY_STATE_UNCALIBRATED)
    # Before the kill the modality runs; on a loaded machine a service that a previous case
    # left busy may miss a deadline or two: a few tries, long deadlines.
    for _ in range(3):
        before, _ = moderate_one(gateway, service, benign, timeout_s=60)
        if before.state in ran:
            break
    assert before.state in ran, before
    assert health_status(gateway.target, name) == health_pb2.HealthCheckResponse.SERVING

    worker = serving_worker(proc)
    worker.kill()  # SIGKILL the worker only: its supervisor keeps the port and respawns it
    killed_at = time.monotonic()
    with ThreadPoolExecutor(1) as pool:
        first_call = pool.submit(moderate_one, gateway, service, benign)
        detected = wait_for(
            lambda: health_status(gateway.target, name) == health_pb2.HealthCheckResponse.NOT_SERVING,
            30,
            f"{name} NOT_SERVING",
        )
        first, first_s = first_call.result()
    assert proc.exited() is None and psutil.pid_exists(proc.pid)  # the supervisor lives on
    again, again_s = moderate_one(gateway, service, benign)
    print(
        f"\n{service}: worker {worker.pid} killed; {name} NOT_SERVING after {detected * 1000:.0f} ms; "
        f"first request {first_s * 1000:.0f} ms ({modality} {pb.ModalityState.Name(first.state)} in "
        f"{first.latency_ms} ms); next {again_s * 1000:.0f} ms ({modality} "
        f"{pb.ModalityState.Name(again.state)} in {again.latency_ms} ms)"
    )
    # Found by the readiness probe within an interval and a timeout (+ a loaded machine's slack).
    assert detected < DETECT_S + 1.0, detected
    assert first.state == pb.MODALITY_STATE_FAILED, first
    assert first.latency_ms < (DETECT_S + 1.0) * 1000, first
    # Once it is known, the modality fails at once, saying why.
    assert again.state == pb.MODALITY_STATE_FAILED and again.latency_ms < 1000, again
    assert "readiness probe" in again.reason and service in again.reason, again.reason
    assert health_status(gateway.target, "") == health_pb2.HealthCheckResponse.SERVING
    assert health_status(gateway.target, HEALTH) == health_pb2.HealthCheckResponse.SERVING
    for other in ALSO_DOWN[service]:
        assert (
            health_status(gateway.target, f"{HEALTH}/{other}") == health_pb2.HealthCheckResponse.NOT_SERVING
        )
    assert grpcurl_status(gateway.target, name) == "NOT_SERVING"
    page = gateway.metrics()
    assert metric_value(page, "modgate_gateway_upstream_healthy", service=service, variant="stable") == 0
    assert metric_value(page, "modgate_gateway_breaker_state", service=service, variant="stable") == 2
    assert metric_value(page, "modgate_gateway_modality_serving", modality=modality) == 0

    # The supervisor's new worker loads its model; once its /readyz passes, the modality is back.
    back_after = wait_for(
        lambda: health_status(gateway.target, name) == health_pb2.HealthCheckResponse.SERVING,
        RESPAWN_S,
        f"{name} SERVING again",
    )
    print(f"{service}: {name} SERVING again {back_after + detected:.0f} s after the kill")
    assert time.monotonic() - killed_at < RESPAWN_S + 30
    # A fresh worker's first requests may be slow on a loaded machine: a few tries, long deadlines.
    seen = []
    for _ in range(5):
        back, _ = moderate_one(gateway, service, benign, timeout_s=60)
        seen.append(f"{pb.ModalityState.Name(back.state)}: {back.reason}")
        if back.state in ran:
            break
    assert back.state in ran, f"{modality} never ran again after {name} was SERVING: {seen}"
    assert grpcurl_status(gateway.target, name) == "SERVING"
    page = gateway.metrics()
    assert metric_value(page, "modgate_gateway_upstream_healthy", service=service, variant="stable") == 1
    assert metric_value(page, "modgate_gateway_breaker_state", service=service, variant="stable") == 0
    assert metric_value(page, "modgate_gateway_modality_serving", modality=modality) == 1
