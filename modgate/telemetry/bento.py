"""BentoML and its uvicorn: one tracer provider per service process, one trace per request.

:func:`bentoml_tracing_config` is the ``@bentoml.service`` tracing section; the two hooks are
called by :func:`~modgate.telemetry.setup_telemetry` and do nothing outside a BentoML process.
"""

from __future__ import annotations

import functools
import inspect
import logging
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from modgate.telemetry.config import EXCLUDED_HTTP_PATHS, TelemetryConfig

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

_log = logging.getLogger("modgate.telemetry")


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


def hand_provider_to_bentoml(provider: TracerProvider) -> None:
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


def isolate_uvicorn_requests() -> None:
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
