"""The modgate.v1.Moderation servicer: auth, admission, validation and one call per request.

Per RPC: authenticate the caller -> validate the request and authorize its policy and
media_uri -> price it in work units (gateway/cost.py; over the per-request maximum:
RESOURCE_EXHAUSTED) -> admit it (slots, units in flight, the caller's fair share, bounded
wait; gateway/admission.py) -> open its media (gateway/media/intake.py: inline bytes, spooled
stream, file:// or fetched URI; no media and no text: INVALID_ARGUMENT) -> one ModerationJob
(gateway/job.py) to the VerdictPipeline -> its Verdict back to the caller, all under the
request's deadline. Nothing takes a slot before it is authenticated and valid. Every refusal
is a typed GatewayError mapped to its status by gateway.errors.grpc_status. What the pipeline
is, and how the server around this servicer is built and run, is gateway/app.py's business.
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
from gateway.media.intake import MediaIntake, MediaSource
from gateway.pipeline import VerdictPipeline
from gateway.validation import has_text, validate_request
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
    ) -> None:
        self.config = config
        self.policies = policies
        self.pipeline = pipeline
        self.auth = auth
        self.admission = admission
        self.intake = intake

    async def Moderate(self, request: pb.ModerateRequest, context: grpc.aio.ServicerContext) -> pb.Verdict:
        return await self._serve(
            request, context, lambda ctx: self.intake.unary(request, ctx), streamed=False
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
        return await self._serve(
            first.header, context, lambda ctx: self.intake.streamed(chunks, ctx), streamed=True
        )

    # --- request lifecycle -----------------------------------------------------------------------

    async def _serve(
        self,
        request: pb.ModerateRequest,
        context: grpc.aio.ServicerContext,
        open_media: OpenMedia,
        *,
        streamed: bool,
    ) -> pb.Verdict:
        started = time.monotonic()
        ctx: RequestContext | None = None
        ticket: Ticket | None = None
        status, decision = "INTERNAL", None
        try:
            # Before admission: an unauthenticated or invalid request never takes a slot.
            caller = self.auth.authenticate(context.invocation_metadata())
            policy = validate_request(request, self.policies, self.config.default_policy, streamed=streamed)
            self.auth.authorize(caller, policy.name, request.media_uri)
            cost = self._cost(request, streamed=streamed)
            rates = self.config.orchestration.cost_rates()
            units, text_units = rates.units(cost), rates.text_units(cost)
            self.admission.check_request(units, text_units, cost.describe())
            validated_s = time.monotonic() - started
            remaining = context.time_remaining()
            ticket = await self.admission.acquire(
                None if remaining is None else started + remaining,
                caller=caller_key(caller, context.peer()),
                units=units,
                text_units=text_units,
            )
            ctx = self._context(request, context, policy, ticket, cost)
            ctx.timings["validate"] = validated_s * 1000.0  # authentication, validation, pricing
            ctx.timings["queueing"] = ticket.waited_s * 1000.0
            verdict = await self._moderate(request, ctx, open_media)
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
            if ticket is not None:
                self.admission.release(ticket)
            metrics.record_request(status, decision, time.monotonic() - started)
        raise AssertionError("unreachable: abort raises")

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

    def _cost(self, request: pb.ModerateRequest, *, streamed: bool) -> WorkCost:
        """What admission knows of the request's cost: its own text, and the frame cap for media."""
        visual = pb.MODALITY_VISUAL not in request.options.skip_modalities
        frame_cap = self.config.split_options(max_frames=request.options.max_frames).max_frames
        has_media = streamed or bool(request.media) or bool(request.media_uri)
        return request_cost(request, has_media=has_media, frame_cap=frame_cap if visual else 0)

    def _context(
        self,
        request: pb.ModerateRequest,
        context: grpc.aio.ServicerContext,
        policy: Policy,
        ticket: Ticket,
        cost: WorkCost,
    ) -> RequestContext:
        remaining = context.time_remaining()
        budget = self.config.default_deadline_s if remaining is None else remaining
        return RequestContext(
            request_id=request.request_id or RequestContext.new_request_id(),
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
