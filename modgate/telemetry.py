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
                                      (default http://127.0.0.1:4318, the local trace store)
  OTEL_EXPORTER_OTLP[_TRACES]_PROTOCOL  http/protobuf (default) or grpc
  OTEL_TRACES_EXPORTER                otlp (default), console or none
  OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG  e.g. parentbased_traceidratio + 0.1; the default
                                      parentbased_always_on.  Parent-based samplers make the
                                      gateway's decision win in every service.
  OTEL_SERVICE_NAME                   overrides the name given to setup_telemetry (the chart
                                      sets modgate-<component>); OTEL_RESOURCE_ATTRIBUTES adds
  MODGATE_VARIANT                     stable | canary -> resource attribute modgate.variant
  MODGATE_ENVIRONMENT                 -> resource attribute deployment.environment

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
"""

from __future__ import annotations

import functools
import inspect
import logging
import os
import socket
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer

if TYPE_CHECKING:
    import httpx
    from opentelemetry.sdk.trace import TracerProvider

__all__ = [
    "LOG_FORMAT",
    "Attr",
    "TelemetryConfig",
    "TelemetryHandle",
    "batch_spans",
    "bentoml_tracing_config",
    "capture_context",
    "configure_logging",
    "current_span_id",
    "current_trace_id",
    "get_tracer",
    "grpc_aio_server_interceptors",
    "instrument_httpx_client",
    "record_error",
    "setup_telemetry",
    "shutdown",
    "span",
]

_log = logging.getLogger(__name__)

# Every line carries the ids so a log line can be pasted into `modgate trace`.
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s [trace_id=%(trace_id)s span_id=%(span_id)s] %(message)s"

DEFAULT_HTTP_ENDPOINT = "http://127.0.0.1:4318"
DEFAULT_GRPC_ENDPOINT = "http://127.0.0.1:4317"
# Short on purpose: exporting happens off the request path, but a flush at shutdown waits for
# it, and a dead collector must not hold a process for the SDK's default 10-30 s.
DEFAULT_EXPORT_TIMEOUT_S = 2.0
# Local inspection (`modgate trace --last` right after a request) wants spans soon.
DEFAULT_SCHEDULE_DELAY_MS = 500
# Health probes and metric scrapes would otherwise bury the real traces.
EXCLUDED_HTTP_PATHS = ("/livez", "/readyz", "/healthz", "/metrics")


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


@dataclass(frozen=True)
class TelemetryConfig:
    """Tracing settings resolved from the environment (the only place they are read)."""

    enabled: bool
    exporter: str  # otlp | console | none
    protocol: str  # http/protobuf | grpc
    endpoint: str  # full traces URL for http, host URL for grpc
    export_timeout_s: float | None  # None: let the exporter read OTEL_EXPORTER_OTLP_*TIMEOUT
    sample_ratio: float  # for BentoML's own sampler config; the SDK reads OTEL_TRACES_SAMPLER itself
    variant: str
    environment: str | None
    service_name: str | None = None  # OTEL_SERVICE_NAME: a deployment's override of the name

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> TelemetryConfig:
        env = os.environ if env is None else env
        enabled = not _truthy(env.get("OTEL_SDK_DISABLED", "false")) and _truthy(
            env.get("MODGATE_TRACING_ENABLED", "true")
        )
        protocol = (
            env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or env.get("OTEL_EXPORTER_OTLP_PROTOCOL") or ""
        ).strip().lower() or "http/protobuf"
        if protocol not in ("http/protobuf", "grpc"):
            raise ValueError(
                f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r} is not supported: use http/protobuf or grpc"
            )
        endpoint = (env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or "").strip()
        if not endpoint:
            base = (env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or "").strip()
            if protocol == "grpc":
                endpoint = base or DEFAULT_GRPC_ENDPOINT
            else:
                endpoint = (base or DEFAULT_HTTP_ENDPOINT).rstrip("/") + "/v1/traces"
        timeout_set = env.get("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT") or env.get("OTEL_EXPORTER_OTLP_TIMEOUT")
        exporter = (env.get("OTEL_TRACES_EXPORTER") or "otlp").split(",")[0].strip().lower()
        if exporter not in ("otlp", "console", "none"):
            raise ValueError(f"OTEL_TRACES_EXPORTER={exporter!r} is not supported: use otlp, console or none")
        return cls(
            enabled=enabled,
            exporter=exporter,
            protocol=protocol,
            endpoint=endpoint,
            export_timeout_s=None if timeout_set else DEFAULT_EXPORT_TIMEOUT_S,
            sample_ratio=_sample_ratio(env),
            variant=(env.get("MODGATE_VARIANT") or "stable").strip() or "stable",
            environment=(env.get("MODGATE_ENVIRONMENT") or "").strip() or None,
            service_name=(env.get("OTEL_SERVICE_NAME") or "").strip() or None,
        )


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
    BentoML's own handlers, whose format already prints the trace and span id).
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
        _install_log_record_factory()
        if log_level is not None:
            configure_logging(log_level)
        config = TelemetryConfig.from_env()
        if variant:
            config = _replace(config, variant=variant)
        handle = TelemetryHandle(service_name=service_name, config=config)
        if config.enabled:
            handle.provider, handle.resource_attributes = _build_provider(
                service_name, config, service_version
            )
            trace.set_tracer_provider(handle.provider)
            _hand_provider_to_bentoml(handle.provider)
        _isolate_uvicorn_requests()
        _handle = handle
        return handle


def shutdown() -> None:
    """Flush and stop this process's exporter (safe to call when never set up)."""
    if _handle is not None:
        _handle.shutdown()


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


# --- instrumentation helpers ------------------------------------------------------------


def grpc_aio_server_interceptors() -> list[Any]:
    """Interceptors for ``grpc.aio.server(interceptors=...)``: one server span per RPC, continuing
    the caller's W3C trace context from metadata. Empty when tracing is disabled.
    Health and reflection RPCs are not traced (they would bury the real traces)."""
    if _handle is None or not _handle.enabled:
        return []
    from opentelemetry.instrumentation.grpc import aio_server_interceptor, filters

    noise = filters.any_of(
        filters.service_prefix("grpc.health."),
        filters.service_prefix("grpc.reflection."),
    )
    return [aio_server_interceptor(tracer_provider=_handle.provider, filter_=filters.negate(noise))]


def instrument_httpx_client(client: httpx.AsyncClient | httpx.Client) -> httpx.AsyncClient | httpx.Client:
    """Give ``client`` a client span per request and W3C ``traceparent`` injection; returns it.

    A no-op when tracing is disabled. Call once per client, right after creating it.
    """
    if _handle is None or not _handle.enabled:
        return client
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    HTTPXClientInstrumentor.instrument_client(client, tracer_provider=_handle.provider)
    return client


def bentoml_tracing_config(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The ``tracing`` section for ``@bentoml.service(**bentoml_tracing_config(), ...)``.

    It points BentoML's own exporter at the same OTLP endpoint with the same sampling ratio
    (BentoML's sampler is parent-based, so the gateway's decision wins) and keeps health and
    metrics endpoints out of traces. When the service module also calls
    :func:`setup_telemetry` (it should, at import), BentoML uses our provider instead, so the
    HTTP server span gets the modgate resource attributes; this section still supplies the
    excluded URLs. Empty when tracing is disabled.
    """
    config = TelemetryConfig.from_env(env)
    if not config.enabled:
        return {}
    tracing: dict[str, Any] = {
        "sample_rate": config.sample_ratio,
        "excluded_urls": list(EXCLUDED_HTTP_PATHS),
    }
    if config.exporter == "otlp":
        protocol = "grpc" if config.protocol == "grpc" else "http"
        otlp: dict[str, Any] = {"protocol": protocol, "endpoint": config.endpoint}
        if protocol == "grpc":
            otlp["grpc"] = {"insecure": config.endpoint.startswith("http://")}
        tracing.update(exporter_type="otlp", otlp=otlp)
        if config.export_timeout_s is not None:
            tracing["timeout"] = max(1, round(config.export_timeout_s))
    return {"tracing": tracing}


# --- logging ------------------------------------------------------------------------------


def configure_logging(level: int | str = logging.INFO) -> None:
    """Root logger to stderr with :data:`LOG_FORMAT` (trace and span id on every line).

    Existing root handlers are kept (a host framework owns them); ours is added only when
    there are none."""
    _install_log_record_factory()
    root = logging.getLogger()
    root.setLevel(level)
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        root.addHandler(handler)


_factory_installed = False


def _install_log_record_factory() -> None:
    """Every LogRecord gets ``trace_id``/``span_id`` ("-" outside a span), whoever logs it."""
    global _factory_installed
    if _factory_installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        ctx = trace.get_current_span().get_span_context()
        record.trace_id = format(ctx.trace_id, "032x") if ctx.is_valid else "-"
        record.span_id = format(ctx.span_id, "016x") if ctx.is_valid else "-"
        return record

    logging.setLogRecordFactory(factory)
    _factory_installed = True


# --- internals ----------------------------------------------------------------------------


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


def _hand_provider_to_bentoml(provider: TracerProvider) -> None:
    """Inside a BentoML process, make BentoML's HTTP server span use our provider.

    BentoML builds its own TracerProvider from the service's ``tracing`` config and never
    consults the global one; overriding its DI provider (before the app is built, i.e. at
    service module import) gives one resource, one sampler and one exporter per process.
    """
    if "bentoml" not in sys.modules:
        return
    try:
        from bentoml._internal.configuration.containers import BentoMLContainer
    except ImportError:  # a BentoML without this container: its config-driven provider stays
        _log.warning("could not hand the tracer provider to BentoML; its spans use its own config")
        return
    BentoMLContainer.tracer_provider.set(provider)


def _isolate_uvicorn_requests() -> None:
    """Inside a BentoML process, start every HTTP request from an empty contextvars context.

    With keep-alive and a body over uvicorn's 64 KiB flow-control mark (audio, frames), the
    next request on the connection inherits the previous request's context (CPython #140947):
    OTel's ASGI middleware then sees a current span, ignores the incoming ``traceparent`` and
    files the request as an INTERNAL child of the previous, unrelated trace (seen here: a
    speech request in the trace of the request before it). uvicorn's fix is opt-in
    (``reset_contextvars``) and BentoML does not pass it, so default it on for the
    ``uvicorn.Config`` that BentoML builds after the service module is imported.
    """
    if "bentoml" not in sys.modules:
        return
    try:
        from uvicorn.config import Config
    except ImportError:
        return
    original = Config.__init__
    if getattr(original, "_modgate_resets_contextvars", False):
        return
    if "reset_contextvars" not in inspect.signature(original).parameters:
        _log.warning("this uvicorn cannot reset contextvars per request; traces may mix on keep-alive")
        return

    @functools.wraps(original)
    def __init__(self: Config, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("reset_contextvars", True)
        original(self, *args, **kwargs)

    __init__._modgate_resets_contextvars = True  # type: ignore[attr-defined]
    Config.__init__ = __init__  # type: ignore[method-assign]


def _sample_ratio(env: Mapping[str, str]) -> float:
    sampler = (env.get("OTEL_TRACES_SAMPLER") or "parentbased_always_on").strip().lower()
    if sampler.endswith("always_off"):
        return 0.0
    if sampler.endswith("traceidratio"):
        try:
            return min(1.0, max(0.0, float(env.get("OTEL_TRACES_SAMPLER_ARG", "1.0"))))
        except ValueError:
            return 1.0
    return 1.0


def _truthy(value: str) -> bool:
    return value.strip().lower() in ("1", "true", "yes", "on")


def _replace(config: TelemetryConfig, **changes: Any) -> TelemetryConfig:
    from dataclasses import replace

    return replace(config, **changes)


def _package_version() -> str:
    try:
        from importlib.metadata import version

        return version("modgate")
    except Exception:  # not installed as a distribution (plain checkout)
        return "0.0.0+unknown"
