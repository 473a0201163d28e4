"""Telemetry setup shared by every modgate process (gateway, model services, CLI, trace store).

One call per process, as early as possible (module import of the entry point):

    from modgate import telemetry
    telemetry.setup_telemetry("gateway")          # or "speech", "vision", "text", ...

It installs the global OpenTelemetry TracerProvider (resource: service.name, service.version,
modgate.variant, service.instance.id, deployment.environment when set), an OTLP exporter behind
a BatchSpanProcessor with short timeouts (a collector that is down costs a dropped batch in a
background thread, never a failed or slowed request), and a log record factory that puts
``trace_id``/``span_id`` on every log record so the formats below can print them.

Configuration is the standard OTEL_* environment (read here, nowhere else):
  OTEL_SDK_DISABLED=true / MODGATE_TRACING_ENABLED=false   no SDK at all (no-op spans)
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT  full URL of the traces endpoint (used as is)
  OTEL_EXPORTER_OTLP_ENDPOINT         base URL; "/v1/traces" is appended for http/protobuf
                                      (default: the local trace store, modgate.ports)
  OTEL_EXPORTER_OTLP[_TRACES]_PROTOCOL  http/protobuf (default) or grpc
  OTEL_TRACES_EXPORTER                otlp (default), console or none
  OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG  e.g. parentbased_traceidratio + 0.1; the default
                                      parentbased_always_on.  Parent-based samplers make the
                                      gateway's decision win in every service.
  OTEL_SERVICE_NAME                   overrides the name given to setup_telemetry (the chart
                                      sets modgate-<component>); OTEL_RESOURCE_ATTRIBUTES adds
  MODGATE_VARIANT                     stable | canary -> resource attribute modgate.variant
  MODGATE_ENVIRONMENT                 -> resource attribute deployment.environment
  MODGATE_LOG_FORMAT                  text (default: LOG_FORMAT lines) or json (one object per
                                      line: time, level, logger, message, trace_id, span_id,
                                      service); BentoML's handlers follow it too

Every log record has its control characters escaped (request ids and other caller-supplied
values cannot forge a line; tracebacks stay multi-line, indented): ``log_safety``.

Instrumentation helpers: :func:`grpc_aio_server_interceptors` (gateway gRPC server span,
W3C context extracted from metadata), :func:`instrument_httpx_client` (client span + W3C
``traceparent`` injected into calls to services), :func:`bentoml_tracing_config` (the
``@bentoml.service(**config)`` tracing section; :func:`setup_telemetry` also hands BentoML
our provider so its HTTP server span and the service's own spans share one resource and
exporter, and makes BentoML's uvicorn start every request from an empty context, so a
keep-alive request cannot inherit the previous request's trace).

BentoML batch functions (``@bentoml.api(batchable=True)``) run in the context of the first
request their dispatcher served: do not open spans there; see :func:`batch_spans`.

Span attribute names the tools understand (``modgate trace`` shows them) are in :class:`Attr`.

The package, by job: ``config`` (the OTEL_* environment), ``provider`` (setup, the exporter
pipeline), ``logs`` (trace ids on log records, text or JSON lines), ``log_safety``
(escaping), ``instrumentation`` (gRPC server, httpx),
``bento`` (BentoML and uvicorn), ``spans`` (span helpers, :class:`Attr`). Import the names
below from ``modgate.telemetry``; the submodules are its implementation.
"""

from __future__ import annotations

from modgate.telemetry.bento import bentoml_tracing_config
from modgate.telemetry.config import TelemetryConfig
from modgate.telemetry.instrumentation import grpc_aio_server_interceptors, instrument_httpx_client
from modgate.telemetry.log_safety import escape_control
from modgate.telemetry.logs import LOG_FORMAT, JsonFormatter, configure_logging
from modgate.telemetry.provider import TelemetryHandle, current_handle, setup_telemetry, shutdown
from modgate.telemetry.spans import (
    Attr,
    batch_spans,
    capture_context,
    current_span_id,
    current_trace_id,
    get_tracer,
    record_error,
    span,
)

__all__ = [
    "LOG_FORMAT",
    "Attr",
    "JsonFormatter",
    "TelemetryConfig",
    "TelemetryHandle",
    "batch_spans",
    "bentoml_tracing_config",
    "capture_context",
    "configure_logging",
    "current_handle",
    "current_span_id",
    "current_trace_id",
    "escape_control",
    "get_tracer",
    "grpc_aio_server_interceptors",
    "instrument_httpx_client",
    "record_error",
    "setup_telemetry",
    "shutdown",
    "span",
]
