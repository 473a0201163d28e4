"""Failures with real processes: a SIGKILLed service, a service too slow for the deadline."""

from __future__ import annotations

import time
from collections.abc import Callable

import grpc
import pytest

from modgate.client import ModerationError
from modgate.tools.samples import Sample
from modgate.v1 import moderation_pb2 as pb
from tests.e2e.conftest import Gateway, Services, metric_value

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
