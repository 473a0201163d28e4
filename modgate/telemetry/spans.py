"""Span helpers: attribute names, the current ids, child spans, errors, batched-inference spans."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, Status, StatusCode, Tracer


class Attr:
    """Span attribute keys shared by the gateway, the services and ``modgate trace``."""

    VARIANT = "modgate.variant"  # stable | canary (the upstream variant called / serving)
    MODEL_ID = "modgate.model.id"  # e.g. "whisper-tiny.en@3f2a..."
    BATCH_SIZE = "modgate.batch_size"  # size of the model batch the request's items rode in
    RETRIES = "modgate.retries"  # retries spent on an upstream call
    BREAKER_STATE = "modgate.breaker.state"  # closed | open | half_open
    DECISION = "modgate.decision"  # ALLOW | REVIEW | BLOCK (fusion span)
    MODALITY = "modgate.modality"  # audio | visual | text
    STREAM_COUNT = "modgate.stream_count"  # split: streams in the container
    FRAME_COUNT = "modgate.frame_count"  # split / vision: frames sampled or scored
    REQUEST_ID = "modgate.request_id"
    POLICY = "modgate.policy"  # "name@version"
    ERROR_TYPE = "error.type"  # semantic convention, set by record_error


def get_tracer(name: str) -> Tracer:
    """A tracer from the global provider (a no-op one when tracing is disabled)."""
    return trace.get_tracer(name)


def current_trace_id() -> str:
    """The current trace id as 32 lowercase hex digits, or "" outside any (valid) span."""
    ctx = trace.get_current_span().get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else ""


def current_span_id() -> str:
    """The current span id as 16 lowercase hex digits, or "" outside any (valid) span."""
    ctx = trace.get_current_span().get_span_context()
    return format(ctx.span_id, "016x") if ctx.is_valid else ""


@contextmanager
def span(
    name: str, attributes: Mapping[str, Any] | None = None, *, tracer: str = "modgate"
) -> Iterator[Span]:
    """A child span of the current one; an escaping exception is recorded and marks it ERROR."""
    with get_tracer(tracer).start_as_current_span(name, attributes=dict(attributes or {})) as current:
        yield current


def record_error(target: Span | None, error: BaseException | str, *, error_type: str | None = None) -> None:
    """Mark ``target`` (default: the current span) failed: status ERROR, exception event, error.type.

    Use it where an error is handled rather than raised (a failed upstream call that the
    gateway degrades around), so the trace still shows the failure.
    """
    target = target or trace.get_current_span()
    if isinstance(error, BaseException):
        target.record_exception(error)
        message = f"{type(error).__name__}: {error}"
        error_type = error_type or type(error).__name__
    else:
        message = error
    target.set_status(Status(StatusCode.ERROR, message))
    if error_type:
        target.set_attribute(Attr.ERROR_TYPE, error_type)


# --- batched inference ------------------------------------------------------------------
#
# Inside a BentoML ``@bentoml.api(batchable=True)`` function the ambient trace context is NOT the
# caller's: BentoML's batch dispatcher task is created inside the first request it ever served,
# so every later batch runs in that first request's context (verified on BentoML 1.4.40). A
# span started there lands in a stale trace. Either record the inference span in per-request
# code around the awaited batched call (its batch size known from the result), or capture each
# request's context with :func:`capture_context`, carry it with the item into the batch, and
# open the spans with :func:`batch_spans`.


def capture_context() -> Context:
    """The current trace context, to hand to :func:`batch_spans` from where the items are batched."""
    return otel_context.get_current()


@contextmanager
def batch_spans(
    name: str,
    parents: Sequence[Context | None],
    *,
    batch_size: int,
    model_id: str,
    attributes: Mapping[str, Any] | None = None,
    tracer: str = "modgate",
) -> Iterator[list[Span]]:
    """One span per distinct request in a model batch, each a child of its own request's span.

    ``parents`` holds the captured context of every item (None for an untraced item; duplicates
    are fine: one span per distinct parent span). All spans carry ``batch_size`` and
    ``model_id`` and link to each other's requests, so each request's trace shows the batch it
    rode in. An exception escaping the block marks every span ERROR.
    """
    attrs = {Attr.BATCH_SIZE: batch_size, Attr.MODEL_ID: model_id, **(attributes or {})}
    distinct: dict[tuple[int, int], Context] = {}
    for parent in parents:
        if parent is None:
            continue
        ctx = trace.get_current_span(parent).get_span_context()
        if ctx.is_valid:
            distinct.setdefault((ctx.trace_id, ctx.span_id), parent)
    contexts = list(distinct.values()) or [otel_context.Context()]
    parent_spans = [trace.get_current_span(c).get_span_context() for c in contexts]
    tracer_ = get_tracer(tracer)
    spans = [
        tracer_.start_span(
            name,
            context=c,
            attributes=attrs,
            links=[trace.Link(other) for other in parent_spans if other is not parent_spans[i]],
        )
        for i, c in enumerate(contexts)
    ]
    try:
        yield spans
    except BaseException as exc:
        for s in spans:
            record_error(s, exc)
        raise
    finally:
        for s in spans:
            s.end()
