"""Telemetry settings, resolved from the environment (read here, nowhere else): tracing from the
standard OTEL_* variables, the log line format from MODGATE_LOG_FORMAT."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from modgate.ports import TRACE_STORE_GRPC_URL, TRACE_STORE_URL

# Without an endpoint in the environment, spans go to the local trace store (`modgate up`).
DEFAULT_HTTP_ENDPOINT = TRACE_STORE_URL
DEFAULT_GRPC_ENDPOINT = TRACE_STORE_GRPC_URL
# Short on purpose: exporting happens off the request path, but a flush at shutdown waits for
# it, and a dead collector must not hold a process for the SDK's default 10-30 s.
DEFAULT_EXPORT_TIMEOUT_S = 2.0
# Local inspection (`modgate trace --last` right after a request) wants spans soon.
DEFAULT_SCHEDULE_DELAY_MS = 500
# Health probes and metric scrapes would otherwise bury the real traces.
EXCLUDED_HTTP_PATHS = ("/livez", "/readyz", "/healthz", "/metrics")
# MODGATE_LOG_FORMAT: text (one readable line per record) or json (one JSON object per line).
LOG_FORMATS = ("text", "json")


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
    log_format: str = "text"  # MODGATE_LOG_FORMAT: text | json

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
            log_format=log_format_from_env(env),
        )


def log_format_from_env(env: Mapping[str, str] | None = None) -> str:
    """MODGATE_LOG_FORMAT, checked: "text" (default) or "json"."""
    env = os.environ if env is None else env
    value = (env.get("MODGATE_LOG_FORMAT") or "text").strip().lower() or "text"
    if value not in LOG_FORMATS:
        raise ValueError(f"MODGATE_LOG_FORMAT={value!r} is not supported: use text or json")
    return value


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
