"""gateway/app.py: what each MODGATE_GATEWAY_MODE wires, the metrics endpoint's lifecycle, and
that the request path is reachable by reading imports from `python -m gateway`."""

from __future__ import annotations

import ast
import asyncio
import socket
from collections.abc import Callable
from pathlib import Path

import grpc
import httpx
import pytest
from pydantic import ValidationError

from gateway.app import GatewayServer, build_gateway
from gateway.config import GatewayConfig, GatewayMode
from gateway.orchestrator import Orchestrator
from gateway.pipeline import SplitOnlyPipeline
from gateway.upstreams.config import OrchestrationSettings
from modgate.tools.mediagen import Generated, MediaSpec
from modgate.v1 import moderation_pb2 as pb
from modgate.v1 import moderation_pb2_grpc as pb_grpc
from tests.gateway.gateway_process import REPO

pytestmark = pytest.mark.timeout(60)


def config(orchestration: dict[str, object] | None = None, **overrides: object) -> GatewayConfig:
    base: dict[str, object] = {"listen": "127.0.0.1:0", "split_workers": 0, "decode_threads": 1}
    base.update(overrides)
    settings = OrchestrationSettings(**{"metrics_port": 0, **(orchestration or {})})  # type: ignore[arg-type]
    return GatewayConfig(**base, orchestration=settings)  # type: ignore[arg-type]


def test_mode_reads_models_or_split_only_from_the_env(monkeypatch: pytest.MonkeyPatch) -> None:
    assert GatewayConfig().mode is GatewayMode.MODELS
    monkeypatch.setenv("MODGATE_GATEWAY_MODE", "split_only")
    assert GatewayConfig().mode is GatewayMode.SPLIT_ONLY
    monkeypatch.setenv("MODGATE_GATEWAY_MODE", "gateway.pipeline:split_only")  # the old string factory
    with pytest.raises(ValidationError, match="models"):
        GatewayConfig()


async def moderate(gateway: GatewayServer, request: pb.ModerateRequest) -> pb.Verdict:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{gateway.port}") as channel:
        return await pb_grpc.ModerationStub(channel).Moderate(request, timeout=20)


def test_split_only_mode_splits_and_skips_every_modality(
    make_media: Callable[[MediaSpec], Generated],
) -> None:
    clip = make_media(MediaSpec())

    async def scenario() -> tuple[GatewayServer, pb.Verdict]:
        gateway = build_gateway(config(mode="split_only"))
        await gateway.start()
        try:
            return gateway, await moderate(gateway, pb.ModerateRequest(content_id="c", media=clip.data))
        finally:
            await gateway.stop(0)

    gateway, verdict = asyncio.run(scenario())
    assert isinstance(gateway.pipeline, SplitOnlyPipeline)
    assert gateway.plane.metrics is None  # no model services, no /metrics
    assert verdict.decision == pb.DECISION_UNSPECIFIED and verdict.content_id == "c"
    assert {m.state for m in verdict.modalities} == {pb.MODALITY_STATE_SKIPPED}
    assert verdict.media.has_video and verdict.media.frames_sampled == 4
    assert "split" in {t.stage for t in verdict.timings}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_models_mode_wires_the_upstreams_file_and_serves_metrics_while_running(tmp_path: Path) -> None:
    upstreams = tmp_path / "upstreams.yaml"
    upstreams.write_text(
        'speech: {stable: {url: "http://127.0.0.1:9"}}\n'
        'text: {stable: {url: "http://127.0.0.1:9"}, canary: {url: "http://127.0.0.1:10", weight: 5}}\n'
    )
    ports = [free_port(), free_port()]

    async def scenario() -> tuple[list[GatewayServer], list[str]]:
        # Two gateways in one process: each owns its endpoint (nothing is started once per process).
        gateways = [
            build_gateway(
                config({"upstreams_file": upstreams, "metrics_port": port, "metrics_host": "127.0.0.1"})
            )
            for port in ports
        ]
        for gateway in gateways:
            await gateway.start()
        try:
            async with httpx.AsyncClient(trust_env=False) as client:
                pages = [(await client.get(f"http://127.0.0.1:{p}/metrics")).text for p in ports]
        finally:
            for gateway in gateways:
                await gateway.stop(0)
        return gateways, pages

    gateways, pages = asyncio.run(scenario())
    orchestrator = gateways[0].pipeline
    assert isinstance(orchestrator, Orchestrator)
    assert orchestrator.pools["speech"].stable.url == "http://127.0.0.1:9"
    assert orchestrator.pools["vision"].stable.url == "http://127.0.0.1:3002"  # not in the file: local
    canary = orchestrator.pools["text"].canary
    assert canary is not None and canary.url == "http://127.0.0.1:10"
    assert all("modgate_gateway_breaker_state" in page for page in pages)
    for port in ports:  # stopped with the gateway
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2, trust_env=False)


def test_a_busy_metrics_port_fails_the_start(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        async def scenario() -> None:
            gateway = build_gateway(config({"metrics_port": port, "metrics_host": "127.0.0.1"}))
            try:
                await gateway.start()
            finally:
                await gateway.stop(0)

        with pytest.raises(OSError, match="MODGATE_GATEWAY_METRICS_PORT"):
            asyncio.run(scenario())


def imported_modules(module: str) -> set[str]:
    """The gateway modules `module` imports, directly or not, read from the source (no import)."""
    seen: set[str] = set()
    todo = [module]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        path = REPO / Path(*name.split("."))
        file = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
        if not file.exists():
            continue
        seen.add(name)
        for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("gateway"):
                todo.append(node.module)
                todo.extend(f"{node.module}.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.Import):
                todo.extend(a.name for a in node.names if a.name.startswith("gateway"))
    return seen


def test_reading_imports_from_main_reaches_the_orchestrator_and_fusion() -> None:
    reached = imported_modules("gateway.__main__")
    assert {"gateway.app", "gateway.server", "gateway.orchestrator.core", "gateway.fusion"} <= reached
    assert {"gateway.media.intake", "gateway.media.split_stage", "gateway.upstreams.http"} <= reached
    for name in reached:  # nothing on the request path is loaded by name
        source = (REPO / Path(*name.split("."))).with_suffix(".py")
        if source.exists():
            assert "importlib" not in source.read_text(encoding="utf-8"), name
