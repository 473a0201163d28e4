"""Wiring: the one place the gateway's parts are built and connected.

build_gateway(config) builds, for MODGATE_GATEWAY_MODE=models (the default), in this order:
  config -> policies (every bank they name must be in the bank directory) -> service pools (a
  stable and optional canary upstream client per model service) -> split workers ->
  MediaSplitter -> Orchestrator (the data plane, with the exact-hash stage over
  MODGATE_BANK_DIR) -> verdict ledger (the verdict store, MODGATE_STORE_*; off with
  MODGATE_STORE_ENABLED=false) -> ModerationService (auth, admission, media intake, ledger) ->
  gRPC server (+ health, reflection) -> metrics endpoint.
split_only builds the same without service pools and metrics endpoint, with SplitOnlyPipeline
as the data plane. Tests pass their own pipeline: build_gateway(config, pipeline=...).
GatewayServer starts and stops every part that holds processes, threads or connections.

gRPC health: "" and modgate.v1.Moderation follow the gateway itself (SERVING once started;
it answers per policy while a model service is down). With the models pipeline, the upstream
health checks (gateway/upstreams/health.py) also publish one name per modality,
modgate.v1.Moderation/AUDIO, /VISUAL and /TEXT: NOT_SERVING while a service it needs fails
its readiness probe.

    build_gateway(config, pipeline=None, *, policies=None) -> GatewayServer
    serve(config=None, pipeline=None)  # runs until SIGTERM/SIGINT
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from gateway.admission import Admission
from gateway.auth import Authenticator
from gateway.config import GatewayConfig, GatewayMode
from gateway.ledger import LedgerMaintenance, VerdictLedger
from gateway.media.fetch import FetchPolicy
from gateway.media.intake import MediaIntake
from gateway.media.split_stage import MediaSplitter
from gateway.media.worker import SplitWorkers
from gateway.metrics import MetricsEndpoint
from gateway.orchestrator import Orchestrator
from gateway.orchestrator.exact import ExactStage
from gateway.pipeline import ClosablePipeline, SplitOnlyPipeline, VerdictPipeline
from gateway.server import SERVICE_NAME, ModerationService, add_moderation_service
from gateway.tls import add_listen_port
from gateway.upstreams.config import SERVICES, OrchestrationSettings, Upstreams
from gateway.upstreams.health import HealthMonitor
from gateway.upstreams.services import ServicePool
from modgate import telemetry
from modgate.banks.checks import check_policy_banks
from modgate.policy import Modality, Policy, load_policies
from modgate.store import StoreUnavailable

log = logging.getLogger("gateway")


@dataclass
class DataPlane:
    """The pipeline and the parts it runs on that the server starts and stops."""

    pipeline: VerdictPipeline
    workers: SplitWorkers | None = None
    metrics: MetricsEndpoint | None = None
    upstream_health: HealthMonitor | None = None


def gateway_policies(config: GatewayConfig, policies: dict[str, Policy] | None = None) -> dict[str, Policy]:
    """The policies (config.policy_dir unless given), which must include the default policy."""
    policies = policies if policies is not None else load_policies(config.policy_dir)
    if config.default_policy not in policies:
        raise ValueError(
            f"default policy {config.default_policy!r} is not among the policies in {config.policy_dir} "
            f"({', '.join(sorted(policies))}); set MODGATE_GATEWAY_DEFAULT_POLICY"
        )
    return policies


def service_pools(upstreams: Upstreams, settings: OrchestrationSettings) -> dict[str, ServicePool]:
    """One pool of upstream clients (stable, optional canary) per model service."""
    pools = {}
    for service in SERVICES:
        cfg = upstreams.for_service(service)
        canary = ""
        if cfg.canary:
            mode = " (shadow)" if cfg.canary.shadow else ""
            canary = f", canary {cfg.canary.url} weight {cfg.canary.weight}{mode}"
        log.info("upstream %s: stable %s%s", service, cfg.stable.url, canary)
        pools[service] = ServicePool(service, cfg, settings)
    return pools


def metrics_endpoint(config: GatewayConfig) -> MetricsEndpoint | None:
    """/metrics on MODGATE_GATEWAY_METRICS_PORT (0: none), by default on the gRPC listen host."""
    settings = config.orchestration
    if settings.metrics_port == 0:
        return None
    listen_host = config.listen.rsplit(":", 1)[0].strip("[]") or "127.0.0.1"
    return MetricsEndpoint(settings.metrics_port, settings.metrics_host or listen_host)


def build_data_plane(config: GatewayConfig) -> DataPlane:
    if config.mode is GatewayMode.SPLIT_ONLY:
        workers = SplitWorkers(config.split_workers)
        return DataPlane(SplitOnlyPipeline(MediaSplitter(workers, config)), workers)
    settings = config.orchestration
    # The upstreams file (MODGATE_GATEWAY_UPSTREAMS_FILE), or the three local services.
    pools = service_pools(settings.load_upstreams(), settings)
    workers = SplitWorkers(config.split_workers)
    orchestrator = Orchestrator(
        pools,
        MediaSplitter(workers, config),
        settings,
        streams_over_limit=config.streams_over_limit,
        # Exact MD5/SHA-256 lookups before splitting (the bank directory, hot-reloaded).
        exact=ExactStage.from_settings(config.banks),
    )
    return DataPlane(orchestrator, workers, metrics_endpoint(config), HealthMonitor(pools, settings))


def build_ledger(config: GatewayConfig) -> VerdictLedger | None:
    """The verdict ledger over MODGATE_STORE_URL, opened now so a bad URL fails the start; a
    store that is only down is not fatal (verdicts spool or are refused, as each policy says)."""
    if not config.store.enabled:
        log.warning(
            "verdict store off (MODGATE_STORE_ENABLED=false): verdicts are not kept, "
            "request_ids are not deduplicated"
        )
        return None
    ledger = VerdictLedger(config.store)
    try:
        store = ledger.store()
        log.info(
            "verdict store: %s (%s)", store.engine.url.render_as_string(hide_password=True), store.backend
        )
    except StoreUnavailable as exc:
        log.error("verdict store down at start (%s); verdicts follow each policy's store.on_unavailable", exc)
    return ledger


def build_servicer(
    config: GatewayConfig,
    policies: dict[str, Policy],
    pipeline: VerdictPipeline,
    ledger: VerdictLedger | None = None,
) -> ModerationService:
    orchestration = config.orchestration
    return ModerationService(
        config,
        policies,
        pipeline,
        # Caller tokens (off without a tokens file).
        auth=Authenticator.from_file(config.security.auth_tokens_file, policies),
        # Bounded requests and work units in flight, fair between callers (+ an optional
        # bounded wait queue): RESOURCE_EXHAUSTED when full.
        admission=Admission(
            max_inflight=orchestration.max_inflight or config.max_concurrent_requests,
            max_queued=orchestration.max_queued,
            queue_timeout_ms=orchestration.queue_timeout_ms,
            retry_after_ms=config.retry_after_ms,
            max_units=orchestration.max_inflight_units,
            max_request_units=orchestration.max_request_units,
            max_request_text_units=orchestration.max_request_text_units,
            caller_share=orchestration.caller_share,
            caller_idle_s=orchestration.caller_idle_s,
        ),
        intake=MediaIntake(config, FetchPolicy.from_config(config)),
        ledger=ledger,
    )


def build_grpc_server(
    config: GatewayConfig, servicer: ModerationService
) -> tuple[grpc.aio.Server, health.aio.HealthServicer, int]:
    """The gRPC server with the servicer, health checking and reflection, bound to config.listen."""
    server = grpc.aio.server(
        # Server span per RPC, continuing the caller's W3C trace context (none with tracing off).
        interceptors=telemetry.grpc_aio_server_interceptors(),
        options=[
            ("grpc.max_receive_message_length", config.max_message_bytes),
            ("grpc.max_send_message_length", 16 * 1024 * 1024),
            ("grpc.so_reuseport", 0),
        ],
        maximum_concurrent_rpcs=None,
    )
    add_moderation_service(servicer, server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection((SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
    port = add_listen_port(server, config.listen, config.security)
    if port == 0:
        raise OSError(f"cannot listen on {config.listen} (in use or not a valid address)")
    return server, health_servicer, port


class GatewayServer:
    """A built, not yet started gateway. `port` is the bound port (useful with port 0)."""

    def __init__(
        self,
        config: GatewayConfig,
        server: grpc.aio.Server,
        servicer: ModerationService,
        health_servicer: health.aio.HealthServicer,
        port: int,
        plane: DataPlane,
    ) -> None:
        self.config = config
        self.server = server
        self.servicer = servicer
        self.health = health_servicer
        self.port = port
        self.plane = plane
        self.maintenance = LedgerMaintenance(servicer.ledger) if servicer.ledger is not None else None
        if plane.upstream_health is not None:
            plane.upstream_health.on_change = self._publish_modalities

    async def _publish_modalities(self, serving: dict[Modality, bool]) -> None:
        for modality, ok in serving.items():
            status = (
                health_pb2.HealthCheckResponse.SERVING if ok else health_pb2.HealthCheckResponse.NOT_SERVING
            )
            await self.health.set(modality_health_name(modality), status)

    @property
    def pipeline(self) -> VerdictPipeline:
        return self.plane.pipeline

    async def start(self) -> None:
        if self.plane.metrics is not None:
            self.plane.metrics.start()  # first: a busy metrics port fails before anything serves
        if self.plane.workers is not None:
            await self.plane.workers.start()
        await self.server.start()
        for name in ("", SERVICE_NAME):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        if self.plane.upstream_health is not None:
            await self.plane.upstream_health.start()
        if self.maintenance is not None:
            self.maintenance.start()

    async def stop(self, grace_s: float | None = None) -> None:
        grace = self.config.shutdown_grace_s if grace_s is None else grace_s
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)
        if self.plane.upstream_health is not None:  # probing until no request is left
            await self.plane.upstream_health.stop()
        if self.plane.workers is not None:
            await self.plane.workers.close()
        if isinstance(self.pipeline, ClosablePipeline):
            await self.pipeline.aclose()
        if self.plane.metrics is not None:
            self.plane.metrics.stop()
        if self.maintenance is not None:
            await self.maintenance.stop()
        if self.servicer.ledger is not None:
            await self.servicer.ledger.aclose()

    async def wait_for_termination(self) -> None:
        await self.server.wait_for_termination()


def modality_health_name(modality: Modality) -> str:
    """The gRPC health name of one modality's dependencies: modgate.v1.Moderation/AUDIO etc."""
    return f"{SERVICE_NAME}/{modality.value}"


def build_gateway(
    config: GatewayConfig,
    pipeline: VerdictPipeline | None = None,
    *,
    policies: dict[str, Policy] | None = None,
) -> GatewayServer:
    """Build the gateway and bind config.listen. The pipeline defaults to config.mode's."""
    policies = gateway_policies(config, policies)
    # A policy acting on a bank the bank directory lacks would silently match nothing: refuse.
    check_policy_banks(policies.values(), config.banks.dir)
    plane = build_data_plane(config) if pipeline is None else DataPlane(pipeline)
    servicer = build_servicer(config, policies, plane.pipeline, build_ledger(config))
    server, health_servicer, port = build_grpc_server(config, servicer)
    return GatewayServer(config, server, servicer, health_servicer, port, plane)


async def serve(config: GatewayConfig | None = None, pipeline: VerdictPipeline | None = None) -> None:
    """Run the gateway until SIGTERM or SIGINT, then drain in-flight requests and stop."""
    config = config or GatewayConfig()
    gateway = build_gateway(config, pipeline)
    await gateway.start()
    host = config.listen.rsplit(":", 1)[0]
    policies = ", ".join(gateway.servicer.policies)
    log.info("modgate gateway listening on %s:%d (policies: %s)", host, gateway.port, policies)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        log.info("shutting down (grace %.0f s)", config.shutdown_grace_s)
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(sig)
        await gateway.stop()
