"""Readiness checks for the stack's processes: an HTTP probe, the gRPC health service."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import httpx

# The gateway's health names per modality: SERVING once its probes found every service it needs.
MODALITY_HEALTH_NAMES = tuple(f"modgate.v1.Moderation/{m}" for m in ("AUDIO", "VISUAL", "TEXT"))


def http_ready(url: str) -> Callable[[], bool]:
    def check() -> bool:
        try:
            return httpx.get(url, timeout=1.0, trust_env=False).status_code == 200
        except httpx.HTTPError:
            return False

    return check


def grpc_serving(target: str, names: Sequence[str] = ("",)) -> Callable[[], bool]:
    """SERVING for every health name in `names` ("" = the gateway process itself)."""

    def check() -> bool:
        import grpc
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        with grpc.insecure_channel(target) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            for name in names:
                try:
                    reply = stub.Check(health_pb2.HealthCheckRequest(service=name), timeout=1.0)
                except grpc.RpcError:
                    return False
                if reply.status != health_pb2.HealthCheckResponse.SERVING:
                    return False
        return True

    return check
