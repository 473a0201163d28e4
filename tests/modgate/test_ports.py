"""The local stack's addresses come from one place: every default that points at the stack
agrees with modgate.ports."""

from __future__ import annotations

from pathlib import Path

import pytest

from modgate import ports
from modgate.client import DEFAULT_TARGET
from modgate.telemetry import TelemetryConfig
from modgate.tools.stack import Stack, StackConfig


@pytest.fixture(autouse=True)
def _no_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MODGATE_GATEWAY_LISTEN", "MODGATE_GATEWAY_METRICS_PORT", "MODGATE_GATEWAY_UPSTREAMS_FILE"):
        monkeypatch.delenv(name, raising=False)
    for service in ("SPEECH", "VISION"):
        monkeypatch.delenv(f"MODGATE_{service}_HOST", raising=False)
        monkeypatch.delenv(f"MODGATE_{service}_PORT", raising=False)


def test_client_gateway_and_upstreams_default_to_the_local_stack() -> None:
    from gateway.config import GatewayConfig
    from gateway.upstreams.config import DEFAULT_URLS, OrchestrationSettings

    assert DEFAULT_TARGET == ports.GATEWAY_TARGET == "127.0.0.1:50051"
    config = GatewayConfig()
    assert config.listen == ports.GATEWAY_TARGET
    assert OrchestrationSettings().metrics_port == ports.METRICS_PORT == 9464
    assert DEFAULT_URLS == ports.SERVICE_URLS
    assert ports.SERVICE_URLS["speech"] == "http://127.0.0.1:3001"


def test_services_bind_their_stack_ports_by_default() -> None:
    from services.speech.config import SpeechSettings
    from services.vision.config import VisionSettings

    assert (SpeechSettings().host, SpeechSettings().port) == (ports.HOST, ports.SPEECH_PORT)
    assert (VisionSettings().host, VisionSettings().port) == (ports.HOST, ports.VISION_PORT)


def test_stack_and_telemetry_use_the_same_ports(tmp_path: Path) -> None:
    stack = Stack(StackConfig(home=tmp_path))
    assert {name: proc.spec.port for name, proc in stack.processes.items()} == {
        name: port for name, port in ports.DEFAULT_PORTS.items() if name != "metrics"
    }
    assert stack.gateway_target == ports.GATEWAY_TARGET
    assert TelemetryConfig.from_env({}).endpoint == f"{ports.TRACE_STORE_URL}/v1/traces"
    assert stack.processes["speech"].spec.env["OTEL_EXPORTER_OTLP_ENDPOINT"] == ports.TRACE_STORE_URL
