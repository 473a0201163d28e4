"""The modgate.v1.Moderation servicer: auth, admission, validation and one call per request.

Per RPC: authenticate the caller -> validate the request and authorize its policy and
media_uri -> the verdict ledger (gateway/ledger: a request_id this caller already had decided
is answered from the verdict store; a duplicate in flight waits for the first) -> price it in
work units (gateway/cost.py; over the per-request maximum: RESOURCE_EXHAUSTED) -> admit it
(slots, units in flight, the caller's fair share, bounded wait; gateway/admission.py) -> open
its media (gateway/media/intake.py: inline bytes, spooled stream, file:// or fetched URI; no
media and no text: INVALID_ARGUMENT) -> one ModerationJob (gateway/job.py) to the
VerdictPipeline -> its Verdict committed to the verdict store -> back to the caller, all under
the request's deadline. Nothing takes a slot before it is authenticated and valid. Every
refusal is a typed GatewayError mapped to its status by gateway.errors.grpc_status. What the
pipeline is, and how the server around this servicer is built and run, is gateway/app.py's
business.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager

import grpc

from gateway import metrics
from gateway.admission import Admission, Ticket
from gateway.auth import Authenticator, Caller
from gateway.config import GatewayConfig
from gateway.context import RequestContext
from gateway.cost import WorkCost, request_cost
from gateway.errors import BadField, DeadlineExceeded, EmptyMedia, GatewayError, grpc_status
from gateway.job import ModerationJob, ModerationRequest
from gateway.ledger import LedgerEntry, VerdictLedger, caller_name, request_digest
from gateway.media.intake import MediaIntake, MediaSource
from gateway.pipeline import VerdictPipeline
from gateway.validation import has_text, validate_request
from modgate.inline_media import DecodedRequest, decode_request
from modgate.policy import Policy
from modgate.v1 import moderation_pb2 as pb
from modgate.v1 import moderation_pb2_grpc as pb_grpc

log = logging.getLogger("gateway")

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["Moderation"].full_name  # "modgate.v1.Moderation"

# Opens one request's media for the duration of its pipeline run.
OpenMedia = Callable[[RequestContext], AbstractAsyncContextManager[MediaSource | None]]


class ModerationService(pb_grpc.ModerationServicer):
    def __init__(
        self,
        config: GatewayConfig,
        policies: dict[str, Policy],
        pipeline: VerdictPipeline,
        *,
        auth: Authenticator,
        admission: Admission,
        intake: MediaIntake,
        ledger: VerdictLedger | None = None,
    ) -> None:
        self.config = config
        self.policies = policies
        self.pipeline = pipeline
        self.auth = auth
        self.admission = admission
        self.intake = intake
        # The verdict store's side of every request (commit before reply, idempotency); None:
        # no store (MODGATE_STORE_ENABLED=false), verdicts exist only in their replies.
        self.ledger = ledger

    async def Moderate(self, decoded: DecodedRequest, context: grpc.aio.ServicerContext) -> pb.Verdict:
        # Decoded by modgate.inline_media (see add_moderation_service): the media is a view of the
        # received message, not a protobuf copy (up to 32 MiB), and is passed down from here.
        request, media = decoded
        return await self._serve(
            request,
            media,
            context,
            lambda ctx: self.intake.unary(media, request.media_uri, ctx),
            streamed=False,
        )

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
        header = first.header
        return await self._serve(
            header, header.media, context, lambda ctx: self.intake.streamed(chunks, ctx), streamed=True
        )

    # --- request lifecycle -----------------------------------------------------------------------

    async def _serve(
        self,
        request: pb.ModerateRequest,
        media: bytes | memoryview,
        context: grpc.aio.ServicerContext,
        open_media: OpenMedia,
        *,
        streamed: bool,
    ) -> pb.Verdict:
        started = time.monotonic()
        request_id = request.request_id or RequestContext.new_request_id()
        status, decision = "INTERNAL", None
        try:
            # Before the store and admission: an unauthenticated or invalid request costs nothing.
            caller = self.auth.authenticate(context.invocation_metadata())
            policy = validate_request(
                request, media, self.policies, self.config.default_policy, streamed=streamed
            )
            self.auth.authorize(caller, policy.name, request.media_uri, request.options.variant)
            validated_s = time.monotonic() - started

            async def compute() -> tuple[pb.Verdict, RequestContext]:
                return await self._admitted(
                    request,
                    context,
                    policy,
                    open_media,
                    request_id,
                    caller_key(caller, context.peer()),
                    started=started,
                    validated_s=validated_s,
                    has_media=streamed or bool(media),
                )

            if self.ledger is None:
                verdict, _ = await compute()
            else:
                entry = self._entry(request, len(media), request_id, caller, context, started)
                verdict = await self.ledger.decide(entry, policy, compute)
            status, decision = "OK", verdict.decision
            if not request.options.variant:  # a variant pinned by an evaluation caller is no canary sample
                metrics.record_served(verdict, time.monotonic() - started)
            return verdict
        except GatewayError as exc:
            status = exc.code.name
            await self._abort(context, exc, request_id)
        except (asyncio.CancelledError, grpc.aio.AbortError):
            status = "CANCELLED"
            raise
        except Exception as exc:
            log.exception("request %s failed: internal error", request_id)
            await self._abort(context, exc, request_id)
        finally:
            metrics.record_request(status, decision, time.monotonic() - started)
        raise AssertionError("unreachable: abort raises")

    async def _admitted(
        self,
        request: pb.ModerateRequest,
        context: grpc.aio.ServicerContext,
        policy: Policy,
        open_media: OpenMedia,
        request_id: str,
        fair_key: str,
        *,
        started: float,
        validated_s: float,
        has_media: bool,
    ) -> tuple[pb.Verdict, RequestContext]:
        """Price -> admission -> the pipeline: a request the store did not answer."""
        cost = self._cost(request, has_media=has_media)
        rates = self.config.orchestration.cost_rates()
        units, text_units = rates.units(cost), rates.text_units(cost)
        self.admission.check_request(units, text_units, cost.describe())
        remaining = context.time_remaining()
        ticket = await self.admission.acquire(
            None if remaining is None else started + remaining,
            caller=fair_key,
            units=units,
            text_units=text_units,
        )
        try:
            ctx = self._context(request_id, context, policy, ticket, cost)
            ctx.timings["validate"] = validated_s * 1000.0  # authentication, validation, pricing
            ctx.timings["queueing"] = ticket.waited_s * 1000.0
            verdict = await self._moderate(request, ctx, open_media)
        finally:
            self.admission.release(ticket)
        log.info(
            "request %s ok in %.0f ms (%s)",
            ctx.request_id,
            (time.monotonic() - started) * 1000,
            ", ".join(f"{k}={v:.0f}ms" for k, v in ctx.timings.items()),
        )
        return verdict, ctx

    def _entry(
        self,
        request: pb.ModerateRequest,
        media_bytes: int,
        request_id: str,
        caller: Caller | None,
        context: grpc.aio.ServicerContext,
        started: float,
    ) -> LedgerEntry:
        remaining = context.time_remaining()
        budget = self.config.default_deadline_s if remaining is None else remaining
        return LedgerEntry(
            caller=caller_name(caller),
            request_id=request_id,
            idempotent=bool(request.request_id),
            digest=request_digest(request, media_bytes=media_bytes) if request.request_id else "",
            content_id=request.content_id,
            received_at=time.time() - (time.monotonic() - started),
            deadline=started + budget,
        )

    async def _moderate(
        self, request: pb.ModerateRequest, ctx: RequestContext, open_media: OpenMedia
    ) -> pb.Verdict:
        """proto -> ModerationJob -> pipeline -> Verdict, within the request's deadline."""
        try:
            async with asyncio.timeout(max(ctx.remaining_s(), 0.0)), open_media(ctx) as media:
                if media is None and not has_text(request):
                    raise EmptyMedia(
                        "nothing to moderate: the request has no media (media, media_uri or "
                        "ModerateStream data) and no title, description, hashtags or captions; send "
                        "the video, its text, or both"
                    )
                job = ModerationJob(ModerationRequest.from_proto(request), media, ctx)
                return await self.pipeline.run(job)
        except TimeoutError:
            raise DeadlineExceeded(
                "the deadline passed before a verdict could be formed; allow a longer deadline"
            ) from None

    def _cost(self, request: pb.ModerateRequest, *, has_media: bool) -> WorkCost:
        """What admission knows of the request's cost: its own text, and the frame cap for media
        (inline or streamed bytes: has_media; or a media_uri)."""
        visual = pb.MODALITY_VISUAL not in request.options.skip_modalities
        frame_cap = self.config.split_options(max_frames=request.options.max_frames).max_frames
        has_media = has_media or bool(request.media_uri)
        return request_cost(request, has_media=has_media, frame_cap=frame_cap if visual else 0)

    def _context(
        self,
        request_id: str,
        context: grpc.aio.ServicerContext,
        policy: Policy,
        ticket: Ticket,
        cost: WorkCost,
    ) -> RequestContext:
        remaining = context.time_remaining()
        budget = self.config.default_deadline_s if remaining is None else remaining
        return RequestContext(
            request_id=request_id,
            deadline=time.monotonic() + budget,
            policy=policy,
            ticket=ticket,
            cost=cost,
        )

    async def _abort(self, context: grpc.aio.ServicerContext, exc: BaseException, request_id: str) -> None:
        code, message, trailers = grpc_status(exc)
        log.info("request %s refused: %s %s", request_id[:128] or "-", code.name, message)
        if trailers:
            context.set_trailing_metadata(trailers)
        await context.abort(code, message)


def add_moderation_service(servicer: ModerationService, server: grpc.aio.Server) -> None:
    """Register `servicer` as modgate.v1.Moderation: what the generated
    add_ModerationServicer_to_server does, except that Moderate's request is decoded by
    modgate.inline_media (its media a view of the received bytes, not copied into a message)."""
    verdict = pb.Verdict.SerializeToString
    handlers = {
        "Moderate": grpc.unary_unary_rpc_method_handler(
            servicer.Moderate, request_deserializer=decode_request, response_serializer=verdict
        ),
        "ModerateStream": grpc.stream_unary_rpc_method_handler(
            servicer.ModerateStream,
            request_deserializer=pb.ModerateChunk.FromString,
            response_serializer=verdict,
        ),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE_NAME, handlers),))
    server.add_registered_method_handlers(SERVICE_NAME, handlers)


def caller_key(caller: Caller | None, peer: str) -> str:
    """Who a request counts against for fairness: the authenticated caller's name, else the
    peer's IP address without the port ("ipv4:10.0.0.5:41234" -> "10.0.0.5"), so the many
    connections of one client host are one caller."""
    if caller is not None:
        return f"caller:{caller.name}"
    kind, _, rest = (peer or "").partition(":")
    if kind == "ipv4":
        return "peer:" + rest.rsplit(":", 1)[0]
    if kind == "ipv6":
        return "peer:" + rest.rsplit(":", 1)[0].strip("[]")
    return "peer:" + (peer or "unknown")
