"""Ports and addresses of the local stack, in one place.

`modgate up` binds these; the defaults of everything that talks to the stack come from here:
the Python client's target, the gateway's listen address and metrics port, the gateway's
upstream URLs, each model service's bind address, and the OTLP endpoint of the telemetry
setup (the local trace store). Kubernetes does not use them: the chart has its own values
(helm/modgate/values.yaml), which happen to use the same numbers.
"""

from __future__ import annotations

HOST = "127.0.0.1"  # local processes listen on loopback only

GATEWAY_PORT = 50051  # gRPC
METRICS_PORT = 9464  # the gateway's Prometheus /metrics
SPEECH_PORT = 3001
VISION_PORT = 3002
TEXT_PORT = 3003
TRACE_STORE_PORT = 4318  # OTLP/HTTP, the standard port
TRACE_STORE_GRPC_PORT = 4317  # OTLP/gRPC, the standard port (the store serves it with --grpc-port)
CONSOLE_PORT = 8080  # the review console (HTTP); `modgate up` only, not in DEFAULT_PORTS

# Process name -> port, as `modgate up --<name>-port` names them.
DEFAULT_PORTS: dict[str, int] = {
    "gateway": GATEWAY_PORT,
    "metrics": METRICS_PORT,
    "speech": SPEECH_PORT,
    "vision": VISION_PORT,
    "text": TEXT_PORT,
    "traces": TRACE_STORE_PORT,
}


def http_url(port: int, host: str = HOST) -> str:
    return f"http://{host}:{port}"


GATEWAY_TARGET = f"{HOST}:{GATEWAY_PORT}"
SERVICE_URLS: dict[str, str] = {
    "speech": http_url(SPEECH_PORT),
    "vision": http_url(VISION_PORT),
    "text": http_url(TEXT_PORT),
}
TRACE_STORE_URL = http_url(TRACE_STORE_PORT)
TRACE_STORE_GRPC_URL = http_url(TRACE_STORE_GRPC_PORT)

__all__ = [
    "CONSOLE_PORT",
    "DEFAULT_PORTS",
    "GATEWAY_PORT",
    "GATEWAY_TARGET",
    "HOST",
    "METRICS_PORT",
    "SERVICE_URLS",
    "SPEECH_PORT",
    "TEXT_PORT",
    "TRACE_STORE_GRPC_PORT",
    "TRACE_STORE_GRPC_URL",
    "TRACE_STORE_PORT",
    "TRACE_STORE_URL",
    "VISION_PORT",
    "http_url",
]
