"""Instrumentation of the libraries a request passes through: the gRPC server, httpx clients."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modgate.telemetry.provider import current_handle

if TYPE_CHECKING:
    import httpx


def grpc_aio_server_interceptors() -> list[Any]:
    """Interceptors for ``grpc.aio.server(interceptors=...)``: one server span per RPC, continuing
    the caller's W3C trace context from metadata. Empty when tracing is disabled.
    Health and reflection RPCs are not traced (they would bury the real traces)."""
    handle = current_handle()
    if handle is None or not handle.enabled:
        return []
    from opentelemetry.instrumentation.grpc import aio_server_interceptor, filters

    noise = filters.any_of(
        filters.service_prefix("grpc.health."),
        filters.service_prefix("grpc.reflection."),
    )
    return [aio_server_interceptor(tracer_provider=handle.provider, filter_=filters.negate(noise))]


def instrument_httpx_client(client: httpx.AsyncClient | httpx.Client) -> httpx.AsyncClient | httpx.Client:
    """Give ``client`` a client span per request and W3C ``traceparent`` injection; returns it.

    A no-op when tracing is disabled. Call once per client, right after creating it.
    """
    handle = current_handle()
    if handle is None or not handle.enabled:
        return client
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    HTTPXClientInstrumentor.instrument_client(client, tracer_provider=handle.provider)
    return client
