"""Canary and shadow routing with real processes: a second text service runs as the canary."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator

import pytest

from gateway.upstreams.routing import bucket
from modgate.client import Options
from modgate.tools.samples import Sample
from modgate.tools.stack import free_port, service_spec
from modgate.v1 import moderation_pb2 as pb
from tests.e2e.conftest import QUIET_ENV, Gateway, Services, metric_value

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

IDS = [f"canary-req-{i:03d}" for i in range(200)]


def text_status(verdict: pb.Verdict) -> pb.ModalityStatus:
    return next(m for m in verdict.modalities if m.modality == pb.MODALITY_TEXT)


@pytest.fixture(scope="module")
def canary_text(services: Services) -> Iterator[str]:
    """A second text service process, running as the canary variant."""
    port = free_port()
    env = {**QUIET_ENV, "MODGATE_VARIANT": "canary"}
    proc = services.processes.start(
        service_spec("text", port, python=sys.executable, env=env, name="text-canary")
    )
    services.processes.wait_ready(proc)
    yield f"http://127.0.0.1:{port}"
    services.processes.stop("text-canary")  # the model's memory is not needed after this module


def test_canary_weight_30_serves_30_percent_deterministically(
    services: Services, canary_text: str, start_gateway: Callable[..., Gateway]
) -> None:
    gateway = start_gateway(
        "gateway-canary", services.upstreams_yaml(text=f'canary: {{url: "{canary_text}", weight: 30}}')
    )
    served: dict[str, str] = {}
    with gateway.client(timeout_s=30) as client:
        for request_id in IDS:
            verdict = client.moderate_text("Great recipe, thanks for sharing!", request_id=request_id)
            served[request_id] = text_status(verdict).model.variant
            assert verdict.decision == pb.DECISION_ALLOW
        share = sum(v == "canary" for v in served.values()) / len(IDS)
        assert 0.25 <= share <= 0.35, share
        # Deterministic per request id: exactly the ids whose hash bucket is under the weight...
        assert served == {i: "canary" if bucket(i) < 30 else "stable" for i in IDS}
        # ...and the same id sent again is its stored verdict (the verdict store answers it; no
        # variant serves it again, so the served-by counters below do not move for these).
        for request_id in IDS[:20]:
            again = client.moderate_text("Great recipe, thanks for sharing!", request_id=request_id)
            assert again.from_store and text_status(again).model.variant == served[request_id]
    metrics = gateway.metrics()
    canary_count = sum(v == "canary" for v in served.values())
    assert (
        metric_value(metrics, "modgate_gateway_served_by_total", service="text", variant="canary")
        == canary_count
    )
    assert metric_value(metrics, "modgate_gateway_canary_requests_total", service="text") == canary_count


def test_shadow_never_changes_the_decision_and_disagreements_are_counted(
    services: Services,
    gateway: Gateway,
    start_gateway: Callable[..., Gateway],
    start_fake: Callable[..., str],
) -> None:
    # The shadow canary scores everything as violent: its decisions always differ.
    deviant = start_fake("deviant-text", "deviant")
    shadowed = start_gateway(
        "gateway-shadow",
        services.upstreams_yaml(text=f'canary: {{url: "{deviant}", weight: 100, shadow: true}}'),
    )
    texts = [f"Lovely weather for a picnic, day {i}" for i in range(10)]
    with gateway.client(timeout_s=30) as plain, shadowed.client(timeout_s=30) as client:
        for i, text in enumerate(texts):
            expected = plain.moderate_text(text, request_id=f"shadow-{i}")
            verdict = client.moderate_text(text, request_id=f"shadow-{i}")
            assert verdict.decision == expected.decision == pb.DECISION_ALLOW
            assert text_status(verdict).model.variant == "stable"
            assert [(c.category, round(c.score, 4)) for c in verdict.categories] == [
                (c.category, round(c.score, 4)) for c in expected.categories
            ]
    # Shadow results are compared after the verdict is sent: wait for them to be counted.
    until = time.monotonic() + 30
    while time.monotonic() < until:
        metrics = shadowed.metrics()
        if metric_value(metrics, "modgate_gateway_shadow_disagreements_total", service="text") >= len(texts):
            break
        time.sleep(0.2)
    assert metric_value(metrics, "modgate_gateway_shadow_disagreements_total", service="text") == len(texts)
    assert metric_value(
        metrics, "modgate_gateway_shadow_requests_total", service="text", outcome="ok"
    ) == len(texts)
    assert metric_value(metrics, "modgate_gateway_served_by_total", service="text", variant="canary") == 0


def test_shadow_with_an_agreeing_canary_counts_no_disagreement(
    services: Services, canary_text: str, start_gateway: Callable[..., Gateway]
) -> None:
    shadowed = start_gateway(
        "gateway-shadow-real",
        services.upstreams_yaml(text=f'canary: {{url: "{canary_text}", weight: 100, shadow: true}}'),
    )
    with shadowed.client(timeout_s=30) as client:
        for i in range(5):
            assert client.moderate_text(f"Nice goal in the second half {i}").decision == pb.DECISION_ALLOW
    until = time.monotonic() + 30
    while time.monotonic() < until:
        metrics = shadowed.metrics()
        if metric_value(metrics, "modgate_gateway_shadow_requests_total", service="text", outcome="ok") >= 5:
            break
        time.sleep(0.2)
    assert (
        metric_value(metrics, "modgate_gateway_shadow_requests_total", service="text", outcome="agree") == 5
    )
    assert metric_value(metrics, "modgate_gateway_shadow_disagreements_total", service="text") == 0


def test_speech_shadow_transcript_is_scored_and_compared_but_never_used(
    services: Services,
    start_gateway: Callable[..., Gateway],
    start_fake: Callable[..., str],
    benign: Sample,
) -> None:
    # A speech canary that always hears a threat: its transcript would flip the decision.
    deviant = start_fake("deviant-speech", "deviant-speech")
    shadowed = start_gateway(
        "gateway-speech-shadow",
        services.upstreams_yaml(speech=f'canary: {{url: "{deviant}", weight: 100, shadow: true}}'),
    )
    with shadowed.client(timeout_s=120) as client:
        verdict = client.moderate_file(benign.path, options=Options(include_transcript=True))
    assert verdict.decision == pb.DECISION_ALLOW
    assert not any("kill" in s.text for s in verdict.transcript)  # the stable transcript was used
    audio = next(m for m in verdict.modalities if m.modality == pb.MODALITY_AUDIO)
    assert (audio.model.name, audio.model.variant) == ("whisper-tiny.en", "stable")
    until = time.monotonic() + 60
    while time.monotonic() < until:
        metrics = shadowed.metrics()
        if metric_value(metrics, "modgate_gateway_shadow_disagreements_total", service="speech") >= 1:
            break
        time.sleep(0.2)
    assert metric_value(metrics, "modgate_gateway_shadow_disagreements_total", service="speech") == 1
    assert (
        metric_value(metrics, "modgate_gateway_shadow_requests_total", service="speech", outcome="disagree")
        == 1
    )
