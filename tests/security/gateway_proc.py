"""The real gateway (`python -m gateway`) as a subprocess on 127.0.0.1, TLS-aware.

tests/gateway/gateway_process.py checks readiness over plaintext; a TLS or mTLS gateway needs
the same check over its credentials. The process runs in its own process group
(modgate.tools.stack.ManagedProcess) and is always stopped, split workers included.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import psutil
from grpc_health.v1 import health_pb2, health_pb2_grpc

from modgate.tools.stack import ManagedProcess, ProcessSpec, free_port

BASE_ENV = {
    "OTEL_SDK_DISABLED": "true",
    "PYTHONUNBUFFERED": "1",
    "MODGATE_GATEWAY_MODE": "split_only",
    "MODGATE_GATEWAY_SPLIT_WORKERS": "1",
    "MODGATE_GATEWAY_DECODE_THREADS": "1",
    "MODGATE_GATEWAY_METRICS_PORT": "0",
}


@dataclass(frozen=True)
class ChannelCredentials:
    root: bytes
    cert: bytes | None = None
    key: bytes | None = None

    def grpc(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(
            root_certificates=self.root, private_key=self.key, certificate_chain=self.cert
        )


@dataclass
class Gateway:
    proc: ManagedProcess
    port: int
    credentials: ChannelCredentials | None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def channel(self, credentials: ChannelCredentials | None = None, **options: int) -> grpc.Channel:
        creds = credentials or self.credentials
        opts = [(f"grpc.{k}", v) for k, v in options.items()]
        if creds is None:
            return grpc.insecure_channel(self.address, options=opts)
        # The test certificates name "localhost"; the channel connects to 127.0.0.1.
        opts.append(("grpc.ssl_target_name_override", "localhost"))
        return grpc.secure_channel(self.address, creds.grpc(), options=opts)

    def rss_bytes(self) -> int:
        """Resident memory of the gateway and every descendant (split workers)."""
        total = 0
        for process in self.proc.members():
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                total += process.memory_info().rss
        return total

    def alive(self) -> bool:
        return self.proc.exited() is None

    def log(self) -> str:
        return self.proc.log_path.read_text(encoding="utf-8", errors="replace")

    def serving(self) -> bool:
        with self.channel() as channel:
            try:
                reply = health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(), timeout=1.0
                )
            except grpc.RpcError:
                return False
        return reply.status == health_pb2.HealthCheckResponse.SERVING


@contextlib.contextmanager
def running_gateway(
    log_dir: Path,
    env: dict[str, str] | None = None,
    *,
    credentials: ChannelCredentials | None = None,
    name: str = "gateway",
    startup_timeout_s: float = 60.0,
) -> Iterator[Gateway]:
    port = free_port()
    spec = ProcessSpec(
        name=f"{name}-{port}",
        argv=[sys.executable, "-m", "gateway"],
        port=port,
        ready=lambda: False,
        env={**BASE_ENV, "MODGATE_GATEWAY_LISTEN": f"127.0.0.1:{port}", **(env or {})},
    )
    proc = ManagedProcess(spec, log_dir)
    proc.start()
    gateway = Gateway(proc, port, credentials)
    try:
        deadline = time.monotonic() + startup_timeout_s
        while not gateway.serving():
            if not gateway.alive():
                raise RuntimeError(
                    f"gateway exited with {proc.exited()} while starting:\n{proc.log_tail(40)}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(f"gateway not SERVING after {startup_timeout_s} s:\n{proc.log_tail(40)}")
            time.sleep(0.1)
        yield gateway
    finally:
        proc.stop(grace_s=10.0)
