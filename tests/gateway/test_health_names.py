"""Per-modality gRPC health names and health metrics of a real gateway (models mode, gRPC server
and /metrics on 127.0.0.1) over real sockets: a text service that accepts connections and never
answers (a BentoML service whose worker died), a vision port nobody listens on, and a speech
service that answers. Checked with a gRPC health client and with grpcurl."""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path

import grpc
import httpx
import pytest
from aiohttp import web
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway.app import GatewayServer, build_gateway
from gateway.config import GatewayConfig
from gateway.upstreams.config import OrchestrationSettings
from modgate.client import build_request
from modgate.policy import load_policies
from modgate.v1 import moderation_pb2 as pb
from modgate.v1 import moderation_pb2_grpc as pb_grpc
from modgate.wire import ModelInfo, PolicyRef, TextItemResult, TextRequest, TextResult
from tests.e2e.conftest import metric_value
from tests.gateway.gateway_process import REPO
from tests.gateway.test_upstream_health import silent_socket
from tests.gateway.test_upstream_resilience import free_port

pytestmark = pytest.mark.timeout(90)

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
NAMES = ("", "modgate.v1.Moderation", *(f"modgate.v1.Moderation/{m}" for m in ("AUDIO", "VISUAL", "TEXT")))
GRPCURL = Path(shutil.which("grpcurl") or REPO / ".tools" / "bin" / "grpcurl")
INTERVAL_S, TIMEOUT_S = 0.2, 0.2


async def text_service(port: int) -> web.AppRunner:
    """A text service on `port` that speaks the contract and finds nothing."""
    policies = load_policies()

    async def moderate(request: web.Request) -> web.Response:
        req = TextRequest.model_validate(await request.json())
        policy = policies[req.policy]
        result = TextResult(
            items=[TextItemResult(id=item.id, scores={}, matches=[]) for item in req.items],
            model=ModelInfo(name="fake-text", version="0"),
            policy=PolicyRef(name=policy.name, version=policy.version, digest=policy.digest),
        )
        return web.json_response(text=result.model_dump_json())

    async def ready(_request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/readyz", ready)
    app.router.add_post("/moderate", moderate)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, reuse_address=True).start()
    return runner


async def health_of(target: str) -> dict[str, int]:
    async with grpc.aio.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        replies = [await stub.Check(health_pb2.HealthCheckRequest(service=n), timeout=5) for n in NAMES]
    return {name: reply.status for name, reply in zip(NAMES, replies, strict=True)}


async def grpcurl_health(target: str, name: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        str(GRPCURL),
        "-plaintext",
        "-d",
        f'{{"service": "{name}"}}',
        target,
        "grpc.health.v1.Health/Check",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()
    return out.decode()


async def moderate_text(target: str, text: str) -> tuple[pb.ModalityStatus, float]:
    started = time.monotonic()
    async with grpc.aio.insecure_channel(target) as channel:
        verdict = await pb_grpc.ModerationStub(channel).Moderate(build_request(description=text), timeout=10)
    elapsed = time.monotonic() - started
    return next(m for m in verdict.modalities if m.modality == pb.MODALITY_TEXT), elapsed


async def until_status(target: str, name: str, status: int, timeout_s: float) -> float:
    started = time.monotonic()
    while (await health_of(target))[name] != status:
        assert time.monotonic() - started < timeout_s, f"{name} not {status} within {timeout_s} s"
        await asyncio.sleep(0.02)
    return time.monotonic() - started


def test_a_dead_text_service_fails_text_at_once_and_says_so_in_health_and_metrics(tmp_path: Path) -> None:
    assert GRPCURL.exists(), f"grpcurl not found on PATH or at {GRPCURL}"

    async def scenario() -> None:
        silent = silent_socket()
        text_port = int(silent.getsockname()[1])
        speech_port, vision_port, metrics_port = free_port(), free_port(), free_port()
        speech = await text_service(speech_port)  # answers /readyz: all speech needs here
        upstreams = tmp_path / "upstreams.yaml"
        upstreams.write_text(
            f'speech: {{stable: {{url: "http://127.0.0.1:{speech_port}"}}}}\n'
            f'vision: {{stable: {{url: "http://127.0.0.1:{vision_port}"}}}}\n'  # nobody listens
            f'text: {{stable: {{url: "http://127.0.0.1:{text_port}"}}}}\n'  # never answers
        )
        settings = OrchestrationSettings(
            upstreams_file=upstreams,
            metrics_port=metrics_port,
            metrics_host="127.0.0.1",
            health_check_interval_s=INTERVAL_S,
            health_check_timeout_s=TIMEOUT_S,
        )
        config = GatewayConfig(listen="127.0.0.1:0", split_workers=0, orchestration=settings)
        gateway: GatewayServer = build_gateway(config)
        text: web.AppRunner | None = None
        await gateway.start()
        target = f"127.0.0.1:{gateway.port}"
        metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
        try:
            # The first request after the outage: failed once the probe finds it (an interval and
            # two rounds at most), not at its 10 s deadline.
            first, elapsed = await moderate_text(target, "see you at the match")
            assert first.state == pb.MODALITY_STATE_FAILED, first
            assert elapsed < INTERVAL_S + 2 * TIMEOUT_S + 0.8, elapsed
            await until_status(target, "modgate.v1.Moderation/TEXT", NOT_SERVING, 2.0)
            # The gateway itself still serves (it answers, per policy); AUDIO needs text too.
            assert await health_of(target) == {
                "": SERVING,
                "modgate.v1.Moderation": SERVING,
                "modgate.v1.Moderation/AUDIO": NOT_SERVING,
                "modgate.v1.Moderation/VISUAL": NOT_SERVING,
                "modgate.v1.Moderation/TEXT": NOT_SERVING,
            }
            assert '"status": "NOT_SERVING"' in await grpcurl_health(target, "modgate.v1.Moderation/TEXT")
            assert '"status": "SERVING"' in await grpcurl_health(target, "modgate.v1.Moderation")
            # Now every request fails TEXT at once, saying why.
            again, elapsed = await moderate_text(target, "see you at the match")
            assert again.state == pb.MODALITY_STATE_FAILED and elapsed < 0.5, (again, elapsed)
            assert "circuit open" in again.reason and "readiness probe" in again.reason, again.reason
            async with httpx.AsyncClient(trust_env=False) as client:
                page = (await client.get(metrics_url)).text
            assert (
                metric_value(page, "modgate_gateway_upstream_healthy", service="text", variant="stable") == 0
            )
            assert (
                metric_value(page, "modgate_gateway_upstream_healthy", service="vision", variant="stable")
                == 0
            )
            assert (
                metric_value(page, "modgate_gateway_upstream_healthy", service="speech", variant="stable")
                == 1
            )
            assert metric_value(page, "modgate_gateway_breaker_state", service="text", variant="stable") == 2
            assert metric_value(page, "modgate_gateway_modality_serving", modality="TEXT") == 0
            assert (
                metric_value(
                    page,
                    "modgate_gateway_upstream_probe_duration_seconds_count",
                    service="text",
                    variant="stable",
                )
                >= 1
            )

            # The text service is back on its port: TEXT serves again, and so does AUDIO.
            silent.close()
            text = await text_service(text_port)
            await until_status(target, "modgate.v1.Moderation/TEXT", SERVING, 3.0)
            health = await health_of(target)
            assert health["modgate.v1.Moderation/AUDIO"] == SERVING
            assert health["modgate.v1.Moderation/VISUAL"] == NOT_SERVING  # still nobody there
            assert '"status": "SERVING"' in await grpcurl_health(target, "modgate.v1.Moderation/TEXT")
            back, _ = await moderate_text(target, "see you at the match")
            assert back.state == pb.MODALITY_STATE_OK, back
            async with httpx.AsyncClient(trust_env=False) as client:
                page = (await client.get(metrics_url)).text
            assert (
                metric_value(page, "modgate_gateway_upstream_healthy", service="text", variant="stable") == 1
            )
            assert metric_value(page, "modgate_gateway_breaker_state", service="text", variant="stable") == 0
            assert metric_value(page, "modgate_gateway_modality_serving", modality="TEXT") == 1
        finally:
            silent.close()
            await gateway.stop(0)
            await speech.cleanup()
            if text is not None:
                await text.cleanup()

    asyncio.run(scenario())


def test_without_model_services_there_are_no_modality_health_names() -> None:
    async def scenario() -> None:
        port = free_port()
        split_only = build_gateway(
            GatewayConfig(mode="split_only", listen=f"127.0.0.1:{port}", split_workers=0)
        )  # type: ignore[arg-type]
        await split_only.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                stub = health_pb2_grpc.HealthStub(channel)
                with pytest.raises(grpc.aio.AioRpcError) as err:
                    await stub.Check(health_pb2.HealthCheckRequest(service="modgate.v1.Moderation/TEXT"))
                assert err.value.code() == grpc.StatusCode.NOT_FOUND
        finally:
            await split_only.stop(0)

    asyncio.run(scenario())
