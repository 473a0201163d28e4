"""The gateway's gRPC server: modgate.v1.Moderation plus health checking and reflection.

Per request: admit (concurrency limit) -> validate -> resolve media (inline bytes, file:// under
the media root, streamed chunks spooled to disk, http(s) only when enabled) -> split in a worker
process -> VerdictPipeline. Every refusal is a typed GatewayError mapped to its status by
gateway.errors.grpc_status.

Public factory (other modules build on it; keep it stable):
    build_server(config, pipeline=None, *, policies=None) -> GatewayServer
    serve(config=None, pipeline=None)  # runs until SIGTERM/SIGINT
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import importlib
import logging
import os
import signal
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from gateway import metrics
from gateway.admission import Admission
from gateway.auth import Authenticator
from gateway.config import GatewayConfig
from gateway.errors import (
    BadField,
    DeadlineExceeded,
    GatewayError,
    MediaTooLarge,
    grpc_status,
)
from gateway.media.fetch import FetchPolicy, fetched_media
from gateway.media.source import resolve_file_uri, uri_scheme
from gateway.media.types import SplitMedia
from gateway.media.worker import SplitWorkers
from gateway.pipeline import AudioFirstPipeline, ClosablePipeline, RequestContext, VerdictPipeline
from gateway.tls import add_listen_port
from gateway.validation import validate_request
from modgate import telemetry
from modgate.policy import Policy, load_policies
from modgate.v1 import moderation_pb2 as pb
from modgate.v1 import moderation_pb2_grpc as pb_grpc

log = logging.getLogger("gateway")

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["Moderation"].full_name  # "modgate.v1.Moderation"


def load_pipeline(config: GatewayConfig, policies: dict[str, Policy]) -> VerdictPipeline:
    """The pipeline named by config.pipeline ("module:factory")."""
    module_name, _, attr = config.pipeline.partition(":")
    if not attr:
        raise ValueError(f"MODGATE_GATEWAY_PIPELINE={config.pipeline!r} must look like 'module:factory'")
    factory = getattr(importlib.import_module(module_name), attr)
    pipeline = factory(config, policies)
    if not isinstance(pipeline, VerdictPipeline):
        raise TypeError(f"{config.pipeline} returned {type(pipeline).__name__}, which has no async run()")
    return pipeline


class ModerationService(pb_grpc.ModerationServicer):
    def __init__(
        self,
        config: GatewayConfig,
        policies: dict[str, Policy],
        pipeline: VerdictPipeline,
        workers: SplitWorkers,
    ) -> None:
        self.config = config
        self.policies = policies
        self.pipeline = pipeline
        self.workers = workers
        # Bounded concurrency (+ an optional bounded wait queue): RESOURCE_EXHAUSTED when full.
        orchestration = config.orchestration
        # Caller tokens (off without a tokens file) and the http(s) fetch rules.
        self.auth = Authenticator.from_file(config.security.auth_tokens_file, policies)
        self.fetch_policy = FetchPolicy.from_config(config)
        self.admission = Admission(
            max_inflight=orchestration.max_inflight or config.max_concurrent_requests,
            max_queued=orchestration.max_queued,
            queue_timeout_ms=orchestration.queue_timeout_ms,
            retry_after_ms=config.retry_after_ms,
        )

    @property
    def in_flight(self) -> int:
        return self.admission.inflight

    # --- RPCs ------------------------------------------------------------------------------------

    async def Moderate(self, request: pb.ModerateRequest, context: grpc.aio.ServicerContext) -> pb.Verdict:
        async def handle(ctx: RequestContext) -> pb.Verdict:
            media = await self._unary_media(request, ctx)
            return await self.pipeline.run(request, media, ctx)

        return await self._serve(request, context, handle, streamed=False)

    async def ModerateStream(
        self, request_iterator: AsyncIterator[pb.ModerateChunk], context: grpc.aio.ServicerContext
    ) -> pb.Verdict:
        chunks = aiter(request_iterator)
        try:
            first = await anext(chunks, None)
            if first is None or first.WhichOneof("payload") != "header":
                raise BadField(
                    "header: the first ModerateStream message must carry the request header", field="header"
                )
        except GatewayError as exc:
            await self._abort(context, exc, "")
            raise AssertionError("unreachable") from None
        request = first.header

        async def handle(ctx: RequestContext) -> pb.Verdict:
            media = await self._streamed_media(chunks, request, ctx)
            return await self.pipeline.run(request, media, ctx)

        return await self._serve(request, context, handle, streamed=True)

    # --- request lifecycle -----------------------------------------------------------------------

    async def _serve(self, request, context, handle, *, streamed: bool) -> pb.Verdict:  # type: ignore[no-untyped-def]
        started = time.monotonic()
        ctx: RequestContext | None = None
        admitted = False
        status, decision = "INTERNAL", None
        try:
            # Before admission: an unauthenticated caller never takes a slot.
            caller = self.auth.authenticate(context.invocation_metadata())
            remaining = context.time_remaining()
            queued_s = await self.admission.acquire(None if remaining is None else started + remaining)
            admitted = True
            admitted_at = time.monotonic()
            policy = validate_request(request, self.policies, self.config.default_policy, streamed=streamed)
            self.auth.authorize(caller, policy.name, request.media_uri)
            ctx = self._context(request, context, policy, streamed)
            ctx.caller = caller.name if caller else None
            ctx.record("validate", admitted_at)
            ctx.timings["queueing"] = queued_s * 1000.0
            try:
                async with asyncio.timeout(max(ctx.remaining_s(), 0.0)):
                    verdict = await handle(ctx)
            except TimeoutError:
                raise DeadlineExceeded(
                    "the deadline passed before a verdict could be formed; allow a longer deadline"
                ) from None
            log.info(
                "request %s ok in %.0f ms (%s)",
                ctx.request_id,
                (time.monotonic() - started) * 1000,
                ", ".join(f"{k}={v:.0f}ms" for k, v in ctx.timings.items()),
            )
            status, decision = "OK", verdict.decision
            return verdict
        except GatewayError as exc:
            status = exc.code.name
            await self._abort(context, exc, ctx.request_id if ctx else request.request_id)
        except (asyncio.CancelledError, grpc.aio.AbortError):
            status = "CANCELLED"
            raise
        except Exception as exc:
            request_id = ctx.request_id if ctx else request.request_id
            log.exception("request %s failed: internal error", request_id or "-")
            await self._abort(context, exc, request_id)
        finally:
            if admitted:
                self.admission.release()
            metrics.record_request(status, decision, time.monotonic() - started)
        raise AssertionError("unreachable: abort raises")

    def _context(
        self, request: pb.ModerateRequest, context: grpc.aio.ServicerContext, policy: Policy, streamed: bool
    ) -> RequestContext:
        remaining = context.time_remaining()
        budget = self.config.default_deadline_s if remaining is None else remaining
        return RequestContext(
            request_id=request.request_id or RequestContext.new_request_id(),
            deadline=time.monotonic() + budget,
            policy=policy,
            streamed=streamed,
        )

    async def _abort(self, context: grpc.aio.ServicerContext, exc: BaseException, request_id: str) -> None:
        code, message, trailers = grpc_status(exc)
        log.info("request %s refused: %s %s", request_id[:128] or "-", code.name, message)
        if trailers:
            context.set_trailing_metadata(trailers)
        await context.abort(code, message)

    # --- media -----------------------------------------------------------------------------------

    async def _unary_media(self, request: pb.ModerateRequest, ctx: RequestContext) -> SplitMedia | None:
        config = self.config
        started = time.monotonic()
        source: bytes | Path
        if request.media:
            if len(request.media) > config.max_unary_bytes:
                raise MediaTooLarge(
                    f"media is {len(request.media)} bytes, over the unary limit of {config.max_unary_bytes}; "
                    "use ModerateStream for larger videos",
                    limit="bytes",
                    value=len(request.media),
                    maximum=config.max_unary_bytes,
                )
            source = request.media
            max_bytes = config.max_unary_bytes
        elif request.media_uri:
            if uri_scheme(request.media_uri) == "file":
                source = resolve_file_uri(request.media_uri, config.media_root, config.max_stream_bytes)
            else:
                # Spooled to disk, checked hop by hop (gateway/media/fetch.py); deleted after the split.
                async with fetched_media(
                    request.media_uri,
                    self.fetch_policy,
                    spool_dir=config.spool_dir,
                    deadline_s=ctx.remaining_s(),
                ) as fetched:
                    ctx.record("fetch", started)
                    return await self._split(fetched, self.fetch_policy.max_bytes, request, ctx)
            max_bytes = config.max_stream_bytes
            ctx.record("fetch", started)
        else:
            return None  # text-only request
        return await self._split(source, max_bytes, request, ctx)

    async def _streamed_media(
        self, chunks: AsyncIterator[pb.ModerateChunk], request: pb.ModerateRequest, ctx: RequestContext
    ) -> SplitMedia | None:
        config = self.config
        started = time.monotonic()
        spool_dir = str(config.spool_dir) if config.spool_dir else None
        fd, name = tempfile.mkstemp(prefix="modgate-upload-", suffix=".media", dir=spool_dir)
        path = Path(name)
        try:
            total = 0
            pending = bytearray()  # written in >= 1 MiB pieces: many small messages stay cheap
            with os.fdopen(fd, "wb") as spool:
                async for chunk in chunks:
                    if chunk.WhichOneof("payload") != "data":
                        raise BadField(
                            "header: only the first ModerateStream message may carry the header; "
                            "send the media as data messages",
                            field="header",
                        )
                    total += len(chunk.data)
                    if total > config.max_stream_bytes:
                        # Refuse while receiving: the rest of the upload is never read.
                        raise MediaTooLarge(
                            f"the streamed media exceeds the {config.max_stream_bytes}-byte limit; "
                            "send a shorter or lower-bitrate video",
                            limit="bytes",
                            value=total,
                            maximum=config.max_stream_bytes,
                        )
                    pending += chunk.data
                    if len(pending) >= 1024 * 1024:
                        await asyncio.to_thread(spool.write, bytes(pending))
                        pending.clear()
                await asyncio.to_thread(spool.write, bytes(pending))
            ctx.record("receive", started)
            if total == 0:
                return None  # header only: text-only request
            # The worker reads the spooled file itself: no 256 MiB pickles between processes.
            return await self._split(path, config.max_stream_bytes, request, ctx)
        finally:
            await asyncio.to_thread(path.unlink, missing_ok=True)

    async def _split(
        self, source: bytes | Path, max_bytes: int, request: pb.ModerateRequest, ctx: RequestContext
    ) -> SplitMedia:
        options_msg = request.options
        skip = set(options_msg.skip_modalities)
        options = self.config.split_options(
            fps=options_msg.frame_sample_fps,
            max_frames=options_msg.max_frames,
            audio=pb.MODALITY_AUDIO not in skip,
            video=pb.MODALITY_VISUAL not in skip,
        )
        started = time.monotonic()
        limits = self.config.media_limits(max_bytes)
        pipeline = self.pipeline
        audio_first = (
            self.config.split_audio_first
            and isinstance(pipeline, AudioFirstPipeline)
            and options.audio
            and options.video
        )
        # Early work runs in the request's context, not inside the split span.
        request_context = contextvars.copy_context()
        early: list[Any] = []

        def on_audio(part: SplitMedia) -> None:
            ctx.record("split_audio", started)
            assert isinstance(pipeline, AudioFirstPipeline)
            task = request_context.run(pipeline.start_audio, request, part, ctx)
            if task is not None:
                early.append(task)

        with telemetry.span("split") as span:
            try:
                if audio_first:
                    media = await self.workers.split_audio_first(
                        source, options, limits, on_audio=on_audio, deadline_s=ctx.remaining_s()
                    )
                else:
                    media = await self.workers.split(source, options, limits, deadline_s=ctx.remaining_s())
            except BaseException:
                for task in early:
                    task.cancel()
                raise
            info = media.info
            streams = int(info.has_audio) + int(info.has_video) + info.subtitle_streams
            span.set_attribute(telemetry.Attr.STREAM_COUNT, streams)
            span.set_attribute(telemetry.Attr.FRAME_COUNT, len(media.frames))
            span.set_attribute("modgate.audio_seconds", round(media.audio_duration_s, 3))
        ctx.record("split", started)
        return media


class GatewayServer:
    """A built, not yet started gateway. `port` is the bound port (useful with port 0)."""

    def __init__(
        self,
        config: GatewayConfig,
        server: grpc.aio.Server,
        service: ModerationService,
        health_servicer: health.aio.HealthServicer,
        port: int,
    ) -> None:
        self.config = config
        self.server = server
        self.service = service
        self.health = health_servicer
        self.port = port

    async def start(self) -> None:
        await self.service.workers.start()
        await self.server.start()
        for name in ("", SERVICE_NAME):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)

    async def stop(self, grace_s: float | None = None) -> None:
        grace = self.config.shutdown_grace_s if grace_s is None else grace_s
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)
        await self.service.workers.close()
        if isinstance(self.service.pipeline, ClosablePipeline):
            await self.service.pipeline.aclose()

    async def wait_for_termination(self) -> None:
        await self.server.wait_for_termination()


def build_server(
    config: GatewayConfig,
    pipeline: VerdictPipeline | None = None,
    *,
    policies: dict[str, Policy] | None = None,
) -> GatewayServer:
    """Build the gRPC server and bind config.listen. The pipeline defaults to config.pipeline."""
    policies = policies if policies is not None else load_policies(config.policy_dir)
    if config.default_policy not in policies:
        raise ValueError(
            f"default policy {config.default_policy!r} is not among the policies in {config.policy_dir} "
            f"({', '.join(sorted(policies))}); set MODGATE_GATEWAY_DEFAULT_POLICY"
        )
    pipeline = pipeline if pipeline is not None else load_pipeline(config, policies)
    workers = SplitWorkers(config.split_workers)
    service = ModerationService(config, policies, pipeline, workers)
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
    pb_grpc.add_ModerationServicer_to_server(service, server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection((SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
    port = add_listen_port(server, config.listen, config.security)
    if port == 0:
        raise OSError(f"cannot listen on {config.listen} (in use or not a valid address)")
    return GatewayServer(config, server, service, health_servicer, port)


async def serve(config: GatewayConfig | None = None, pipeline: VerdictPipeline | None = None) -> None:
    """Run the gateway until SIGTERM or SIGINT, then drain in-flight requests and stop."""
    config = config or GatewayConfig()
    gateway = build_server(config, pipeline)
    await gateway.start()
    host = config.listen.rsplit(":", 1)[0]
    policies = ", ".join(gateway.service.policies)
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
