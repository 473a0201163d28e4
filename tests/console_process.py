"""The review console as a real process (uvicorn on 127.0.0.1, a free port) for tests.

    users = write_tokens(tmp_path / "tokens.yaml", {"alice": "reviewer", "root": "admin"})
    with ConsoleProcess(store_url, tokens_file, log_path=tmp_path / "console.log") as console:
        httpx.get(console.url + "/readyz")
        users["alice"]  # alice's token

Shared by tests/modgate/console and the end-to-end tests (a console over the gateway's store).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import httpx

from modgate.console.users import Role, new_entry
from modgate.tools.stack.process import free_port

REPO = Path(__file__).resolve().parents[1]


def write_tokens(path: Path, users: dict[str, str]) -> dict[str, str]:
    """A tokens file with a fresh token per user (name -> role); returns name -> token."""
    tokens: dict[str, str] = {}
    entries = []
    for name, role in users.items():
        token, entry = new_entry(name, Role(role))
        tokens[name] = token
        entries.append(entry)
    path.write_text("".join(entries), encoding="utf-8")
    return tokens


class ConsoleProcess:
    def __init__(
        self,
        store_url: str,
        tokens_file: Path,
        *,
        log_path: Path,
        trace_db: Path | None = None,
        env: dict[str, str] | None = None,
        port: int | None = None,
    ) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.env = {
            **{
                k: v
                for k, v in os.environ.items()
                if not k.startswith(("MODGATE_CONSOLE_", "MODGATE_STORE_"))
            },
            "PYTHONPATH": str(REPO),
            "PYTHONUNBUFFERED": "1",
            "MODGATE_STORE_URL": store_url,
            "MODGATE_CONSOLE_TOKENS_FILE": str(tokens_file),
            "MODGATE_CONSOLE_PORT": str(self.port),
            "MODGATE_CONSOLE_TRACE_DB": str(trace_db or log_path.parent / "no-traces.db"),
            **(env or {}),
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 30.0) -> None:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "modgate.console"],
            env=self.env,
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the console exited ({self.process.returncode}):\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1.0, trust_env=False).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the console was not ready in {timeout_s}s:\n{self.log()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""

    def __enter__(self) -> ConsoleProcess:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
