"""Start the real gateway (`python -m gateway`) as a subprocess on 127.0.0.1 for tests."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

REPO = Path(__file__).resolve().parents[2]


@dataclass
class GatewayProcess:
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout_s: float = 15.0) -> int:
        """SIGTERM, then SIGKILL if it does not exit in time; returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        return self.process.returncode


def _serving(address: str) -> bool:
    with grpc.insecure_channel(address) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=1.0
            )
        except grpc.RpcError:
            return False
    return reply.status == health_pb2.HealthCheckResponse.SERVING


@contextlib.contextmanager
def running_gateway(
    port: int, log_dir: Path, env: dict[str, str] | None = None, startup_timeout_s: float = 60.0
) -> Iterator[GatewayProcess]:
    """Run the gateway until the block exits; it is always stopped (SIGTERM, then SIGKILL)."""
    full_env = {
        **os.environ,
        "MODGATE_GATEWAY_LISTEN": f"127.0.0.1:{port}",
        "MODGATE_GATEWAY_SPLIT_WORKERS": "1",
        "MODGATE_GATEWAY_DECODE_THREADS": "1",
        # These tests are about the server itself: no model services behind it.
        "MODGATE_GATEWAY_MODE": "split_only",
        "PYTHONUNBUFFERED": "1",
        # A verdict store of its own: request ids reused by other gateways are not duplicates here.
        "MODGATE_STORE_URL": f"sqlite:///{log_dir / f'verdicts-{port}.db'}",
        "MODGATE_STORE_SPOOL_DIR": str(log_dir / f"verdict-spool-{port}"),
        **(env or {}),
    }
    log_path = log_dir / f"gateway-{port}.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "gateway"],
            cwd=REPO,
            env=full_env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    gateway = GatewayProcess(process, port, log_path)
    try:
        deadline = time.monotonic() + startup_timeout_s
        while not _serving(gateway.address):
            if process.poll() is not None:
                raise RuntimeError(
                    f"gateway exited with {process.returncode} during startup:\n{gateway.log()}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(f"gateway not SERVING after {startup_timeout_s}s:\n{gateway.log()}")
            time.sleep(0.1)
        yield gateway
    finally:
        gateway.stop()
