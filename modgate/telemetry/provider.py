"""The process's tracer provider: set up once, an OTLP exporter behind a batch processor.

:func:`setup_telemetry` installs it (and trace-aware logging, and the BentoML hooks), and
:func:`current_handle` tells the instrumentation helpers whether tracing is on.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.trace import SpanKind

from modgate.telemetry.bento import hand_provider_to_bentoml, isolate_uvicorn_requests
from modgate.telemetry.config import DEFAULT_EXPORT_TIMEOUT_S, DEFAULT_SCHEDULE_DELAY_MS, TelemetryConfig
from modgate.telemetry.logs import configure_logging, install_log_record_factory

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

_log = logging.getLogger("modgate.telemetry")


@dataclass
class TelemetryHandle:
    """What :func:`setup_telemetry` installed in this process."""

    service_name: str
    config: TelemetryConfig
    provider: TracerProvider | None = None  # None when tracing is disabled
    resource_attributes: dict[str, Any] = field(default_factory=dict)

    @property
    def enabled(self) -> bool:
        return self.provider is not None

    def force_flush(self, timeout_ms: int = 3000) -> bool:
        """Export everything buffered now (bounded by ``timeout_ms``); True when it all went."""
        if self.provider is None:
            return True
        return bool(self.provider.force_flush(timeout_ms))

    def shutdown(self) -> None:
        """Flush and stop the exporter; bounded by the export timeout even with no collector."""
        if self.provider is not None:
            self.provider.shutdown()


_lock = threading.Lock()
_handle: TelemetryHandle | None = None


def setup_telemetry(
    service_name: str,
    *,
    variant: str | None = None,
    service_version: str | None = None,
    log_level: int | str | None = None,
) -> TelemetryHandle:
    """Install tracing + trace-aware logging for this process; later calls return the first handle.

    ``variant`` overrides MODGATE_VARIANT. ``log_level`` (when given) also installs a stderr
    handler with :data:`LOG_FORMAT` on the root logger if it has none (BentoML workers keep
    BentoML's own handlers, whose format already prints the trace and span id), or JSON lines
    with MODGATE_LOG_FORMAT=json (then BentoML's handlers write JSON too). Caller-supplied
    values are escaped in every record either way (:mod:`modgate.telemetry.log_safety`).
    """
    global _handle
    with _lock:
        if _handle is not None:
            if _handle.service_name != service_name:
                _log.warning(
                    "setup_telemetry(%r) ignored: this process is already set up as %r",
                    service_name,
                    _handle.service_name,
                )
            return _handle
        install_log_record_factory()
        config = TelemetryConfig.from_env()
        if log_level is not None:
            configure_logging(
                log_level, service=config.service_name or service_name, log_format=config.log_format
            )
        if variant:
            config = replace(config, variant=variant)
        handle = TelemetryHandle(service_name=service_name, config=config)
        if config.enabled:
            handle.provider, handle.resource_attributes = _build_provider(
                service_name, config, service_version
            )
            trace.set_tracer_provider(handle.provider)
            hand_provider_to_bentoml(handle.provider)
        isolate_uvicorn_requests()
        _handle = handle
        return handle


def shutdown() -> None:
    """Flush and stop this process's exporter (safe to call when never set up)."""
    if _handle is not None:
        _handle.shutdown()


def current_handle() -> TelemetryHandle | None:
    """What :func:`setup_telemetry` installed in this process (None before it ran)."""
    return _handle


def _build_provider(
    service_name: str, config: TelemetryConfig, service_version: str | None
) -> tuple[TracerProvider, dict[str, Any]]:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

    attributes: dict[str, Any] = {
        "service.name": config.service_name or service_name,
        "service.namespace": "modgate",
        "service.version": service_version or _package_version(),
        "service.instance.id": f"{socket.gethostname()}:{os.getpid()}",
        "process.pid": os.getpid(),
        "modgate.variant": config.variant,
    }
    if config.environment:
        attributes["deployment.environment"] = config.environment
    # Resource.create also merges OTEL_RESOURCE_ATTRIBUTES (e.g. k8s.pod.name); ours win.
    resource = Resource.create(attributes)
    # No sampler argument: the SDK reads OTEL_TRACES_SAMPLER / _ARG itself.
    provider = TracerProvider(resource=resource)
    exporter: SpanExporter | None
    if config.exporter == "none":
        exporter = None
    elif config.exporter == "console":
        exporter = ConsoleSpanExporter(service_name=service_name)
    elif config.protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter

        exporter = GrpcExporter(
            endpoint=config.endpoint,
            insecure=config.endpoint.startswith("http://") or None,
            timeout=config.export_timeout_s,
        )
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

        exporter = HttpExporter(endpoint=config.endpoint, timeout=config.export_timeout_s)
    if exporter is not None:
        # Explicit values only where the standard OTEL_BSP_* variables are unset.
        delay_ms = None if "OTEL_BSP_SCHEDULE_DELAY" in os.environ else DEFAULT_SCHEDULE_DELAY_MS
        timeout_ms = (
            None
            if "OTEL_BSP_EXPORT_TIMEOUT" in os.environ
            else (config.export_timeout_s or DEFAULT_EXPORT_TIMEOUT_S) * 1000
        )
        batch = BatchSpanProcessor(exporter, schedule_delay_millis=delay_ms, export_timeout_millis=timeout_ms)
        provider.add_span_processor(_DropAsgiMessageSpans(batch))
    return provider, dict(resource.attributes)


class _DropAsgiMessageSpans(SpanProcessor):
    """Keeps OTel's per-ASGI-message spans ("POST /x http receive" / "... http send", several
    per request in every BentoML service) out of the export: they carry no information the
    server span lacks and would bury the spans that explain where the time went."""

    _SUFFIXES = (" http receive", " http send", " websocket receive", " websocket send")

    def __init__(self, inner: SpanProcessor) -> None:
        self._inner = inner

    def on_start(self, span: Any, parent_context: Context | None = None) -> None:
        self._inner.on_start(span, parent_context=parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        scope = span.instrumentation_scope
        if (
            scope is not None
            and scope.name == "opentelemetry.instrumentation.asgi"
            and span.kind == SpanKind.INTERNAL
            and span.name.endswith(self._SUFFIXES)
        ):
            return
        self._inner.on_end(span)

    def shutdown(self) -> None:
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._inner.force_flush(timeout_millis)


def _package_version() -> str:
    try:
        from importlib.metadata import version

        return version("modgate")
    except Exception:  # not installed as a distribution (plain checkout)
        return "0.0.0+unknown"
