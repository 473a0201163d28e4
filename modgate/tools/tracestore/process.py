"""Run the trace store as a child process (used by `modgate up` and by tests).

with TraceStoreProcess(db_path) as store:          # port 0: any free port
    env = {**os.environ, **store.otel_env()}        # give this to every traced child
"""

from __future__ import annotations

import os
import re
import selectors
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

from modgate.ports import HOST

_READY = re.compile(
    r"modgate-tracestore listening http=(?P<host>[^:\s]+):(?P<port>\d+)(?: grpc=[^:\s]+:(?P<grpc>\d+))?"
)


class TraceStoreProcess:
    """``python -m modgate.tools.tracestore`` on loopback; ``start()`` returns once it accepts exports."""

    def __init__(
        self,
        db_path: str | Path,
        *,
        port: int = 0,
        grpc_port: int | None = None,
        host: str = HOST,
        log_path: str | Path | None = None,
        python: str = sys.executable,
    ) -> None:
        self.db_path = Path(db_path)
        self.host = host
        self.requested_port = port
        self.requested_grpc_port = grpc_port
        self.log_path = Path(log_path) if log_path else None
        self.python = python
        self.port: int | None = None
        self.grpc_port: int | None = None
        self._proc: subprocess.Popen[str] | None = None

    @property
    def endpoint(self) -> str:
        """Base OTLP/HTTP URL, the value for OTEL_EXPORTER_OTLP_ENDPOINT."""
        if self.port is None:
            raise RuntimeError("trace store not started")
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def otel_env(self) -> dict[str, str]:
        """Environment that makes a process set up by modgate.telemetry export here."""
        return {
            "OTEL_EXPORTER_OTLP_ENDPOINT": self.endpoint,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "MODGATE_TRACE_DB": str(self.db_path),
        }

    def start(self, timeout_s: float = 20.0) -> TraceStoreProcess:
        cmd = [self.python, "-m", "modgate.tools.tracestore", "--host", self.host]
        cmd += ["--port", str(self.requested_port), "--db", str(self.db_path)]
        if self.requested_grpc_port is not None:
            cmd += ["--grpc-port", str(self.requested_grpc_port)]
        stderr = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        try:
            self._proc = subprocess.Popen(
                cmd, stdout=subprocess.PIPE, stderr=stderr, text=True, start_new_session=True
            )
        finally:
            if self.log_path:
                stderr.close()  # type: ignore[union-attr]
        assert self._proc.stdout is not None
        deadline = time.monotonic() + timeout_s
        with selectors.DefaultSelector() as selector:
            selector.register(self._proc.stdout, selectors.EVENT_READ)
            while time.monotonic() < deadline:
                if not selector.select(timeout=max(0.0, deadline - time.monotonic())):
                    continue
                line = self._proc.stdout.readline()
                if not line:  # exited before it was ready
                    break
                if match := _READY.search(line):
                    self.port = int(match["port"])
                    self.grpc_port = int(match["grpc"]) if match["grpc"] else None
                    return self
        code = self._proc.poll()
        self.stop()
        where = f"; see {self.log_path}" if self.log_path else ""
        raise RuntimeError(
            f"trace store did not start within {timeout_s:.0f}s (exit code {code}): {' '.join(cmd)}{where}"
        )

    def stop(self, timeout_s: float = 5.0) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stdout:
            proc.stdout.close()

    def __enter__(self) -> TraceStoreProcess:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def env_with_store(store: TraceStoreProcess, base: dict[str, str] | None = None) -> dict[str, str]:
    """``base`` (default: this process's environment) plus the store's OTEL variables."""
    return {**(os.environ if base is None else base), **store.otel_env()}
