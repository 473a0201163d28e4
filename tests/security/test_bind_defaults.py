"""Everything binds to 127.0.0.1 unless told otherwise: the gateway, the three model services
(their settings and their BentoML service declarations) and the local stack that starts them.
Pods get 0.0.0.0 from the Helm chart explicitly."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

from tests.gateway.gateway_process import REPO

LOCAL = "127.0.0.1"


@pytest.fixture(autouse=True)
def _no_modgate_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("MODGATE_"):
            monkeypatch.delenv(name)


def test_gateway_listens_on_localhost_by_default() -> None:
    from gateway.config import GatewayConfig

    config = GatewayConfig()
    assert config.listen.rsplit(":", 1)[0] == LOCAL
    assert config.security.tls_cert_file is None and config.security.auth_tokens_file is None


def test_service_settings_default_to_localhost() -> None:
    from services.speech.config import SpeechSettings
    from services.text.config import TextSettings
    from services.vision.config import VisionSettings

    assert SpeechSettings().host == LOCAL
    assert VisionSettings().host == LOCAL
    assert TextSettings().host == LOCAL


def _service_http_host(path: Path) -> ast.expr:
    """The `host` value in the @bentoml.service(http={...}) decorator of `path`."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.ClassDef):
            continue
        for decorator in node.decorator_list:
            if isinstance(decorator, ast.Call) and ast.unparse(decorator.func) == "bentoml.service":
                for keyword in decorator.keywords:
                    if keyword.arg == "http" and isinstance(keyword.value, ast.Dict):
                        for key, value in zip(keyword.value.keys, keyword.value.values, strict=True):
                            if isinstance(key, ast.Constant) and key.value == "host":
                                return value
    raise AssertionError(f"{path}: no @bentoml.service(http={{'host': ...}})")


@pytest.mark.parametrize("service", ["speech", "vision", "text"])
def test_bentoml_services_declare_a_localhost_bind(service: str) -> None:
    host = _service_http_host(REPO / "services" / service / "service.py")
    if isinstance(host, ast.Constant):
        assert host.value == LOCAL
    else:
        # Read from the service's settings, whose default is checked above.
        assert ast.unparse(host) == "SETTINGS.host", ast.unparse(host)


def test_local_stack_starts_everything_on_localhost() -> None:
    from modgate.ports import HOST
    from modgate.tools.stack import Stack, StackConfig, service_spec

    assert HOST == LOCAL and StackConfig().host == LOCAL
    spec = service_spec("speech", 3001)
    assert spec.argv[spec.argv.index("--host") + 1] == LOCAL
    stack = Stack(StackConfig(trace_store=False, home=Path("/nonexistent-modgate-home")))
    for name, process in stack.processes.items():
        argv = process.spec.argv
        if "--host" in argv:
            assert argv[argv.index("--host") + 1] == LOCAL, name
        listen = process.spec.env.get("MODGATE_GATEWAY_LISTEN")
        if listen is not None:
            assert listen.rsplit(":", 1)[0] == LOCAL, name


def test_review_console_listens_on_localhost_by_default() -> None:
    from modgate.console.config import ConsoleSettings
    from modgate.tools.stack import StackConfig
    from modgate.tools.stack.specs import stack_specs

    settings = ConsoleSettings()
    assert (settings.host, settings.port, settings.secure_cookies) == (LOCAL, 8080, False)
    specs = stack_specs(StackConfig(console_port=8080, home=Path("/nonexistent")))
    [console] = [s for s in specs if s.name == "console"]
    assert console.env["MODGATE_CONSOLE_HOST"] == LOCAL
