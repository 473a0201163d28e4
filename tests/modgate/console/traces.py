"""An OTLP export of a small moderation trace (gateway root span, a service call under it)."""

from __future__ import annotations

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

T0 = 1_700_000_000_000_000_000


def _service(name: str) -> Resource:
    return Resource(attributes=[KeyValue(key="service.name", value=AnyValue(string_value=name))])


def export_request(trace_id: str) -> ExportTraceServiceRequest:
    tid = bytes.fromhex(trace_id)
    root = Span(
        trace_id=tid,
        span_id=bytes.fromhex("00f067aa0ba902b7"),
        name="modgate.v1.Moderation/Moderate",
        kind=Span.SPAN_KIND_SERVER,
        start_time_unix_nano=T0,
        end_time_unix_nano=T0 + 400_000_000,
        attributes=[KeyValue(key="modgate.decision", value=AnyValue(string_value="REVIEW"))],
    )
    child = Span(
        trace_id=tid,
        span_id=bytes.fromhex("00f067aa0ba902b8"),
        parent_span_id=root.span_id,
        name="speech.transcribe",
        kind=Span.SPAN_KIND_CLIENT,
        start_time_unix_nano=T0 + 100_000_000,
        end_time_unix_nano=T0 + 300_000_000,
        attributes=[KeyValue(key="modgate.variant", value=AnyValue(string_value="stable"))],
    )
    return ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(resource=_service("gateway"), scope_spans=[ScopeSpans(spans=[root])]),
            ResourceSpans(resource=_service("speech"), scope_spans=[ScopeSpans(spans=[child])]),
        ]
    )
