"""`modgate up` as a user runs it, as a real subprocess: start, read its state file, kill its
children the way crashes do, stop it with SIGINT, and account for every process it ever had."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from modgate.tools.stack import marked_processes, port_in_use
from modgate.tools.stack.markers import alive

PROCESS_NAMES = ("gateway", "metrics", "speech", "vision", "text", "traces")


class UpProcess:
    def __init__(self, tmp_path: Path, env: dict[str, str] | None = None) -> None:
        self.home = tmp_path / "home"
        self.state_path = self.home / "stack.json"
        self.log_path = tmp_path / "up.log"
        full_env = {**os.environ, "MODGATE_HOME": str(self.home), "OTEL_SDK_DISABLED": "true", **(env or {})}
        ports = [f"--{name}-port=0" for name in PROCESS_NAMES]
        with self.log_path.open("wb") as log:
            self.popen = subprocess.Popen(
                [sys.executable, "-m", "modgate.tools.cli", "up", *ports],
                env=full_env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.seen: dict[int, psutil.Process] = {}  # every process of the stack seen so far

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def state(self) -> dict[str, Any]:
        try:
            return dict(json.loads(self.state_path.read_text()))
        except (OSError, ValueError):
            return {}

    def wait(
        self, condition: Callable[[dict[str, Any]], bool], timeout_s: float, what: str
    ) -> dict[str, Any]:
        """Until condition(state) holds; the supervisor must stay up meanwhile."""
        until = time.monotonic() + timeout_s
        while time.monotonic() < until:
            assert self.popen.poll() is None, f"modgate up exited:\n{self.log()[-4000:]}"
            state = self.state()
            if state and condition(state):
                self.record()
                return state
            time.sleep(0.5)
        raise AssertionError(f"not {what} after {timeout_s:.0f} s:\n{self.log()[-4000:]}")

    def record(self) -> list[psutil.Process]:
        """Note every process of the stack now: descendants of `modgate up` and whatever carries
        its stack marker (BentoML workers in other sessions, orphans included)."""
        found = {p.pid: p for p in psutil.Process(self.popen.pid).children(recursive=True)}
        stack_id = self.state().get("stack_id")
        if stack_id:
            # Most are descendants too: each process once (the count before SIGINT is reported).
            found.update((m.pid, m.process) for m in marked_processes(stack_id) if m.pid not in found)
        for proc in found.values():
            self.seen.setdefault(proc.pid, proc)
        return list(found.values())

    def members(self, name: str) -> list[psutil.Process]:
        leader = psutil.Process(self.state()["processes"][name]["pid"])
        return [leader, *leader.children(recursive=True)]

    def ports(self) -> list[int]:
        """Every port of the stack: each process's, and the gateway's metrics port."""
        state = self.state()
        metrics = int(state["metrics"].rsplit(":", 1)[1].split("/", 1)[0])
        return [info["port"] for info in state["processes"].values()] + [metrics]

    def stop_with_sigint(self, timeout_s: float = 120.0) -> tuple[int, int, list[int]]:
        """SIGINT, as Ctrl-C, then nothing may be left: not a process seen since the start (by
        PID), nor one carrying the stack's marker, nor a listener on any of its ports.
        Returns (exit status, processes alive just before the SIGINT, ports)."""
        before = len(alive(self.record()))
        stack_id, ports = self.state()["stack_id"], self.ports()
        self.popen.send_signal(signal.SIGINT)
        code = self.popen.wait(timeout=timeout_s)
        left = alive(self.seen.values())
        assert left == [], [(p.pid, p.cmdline()) for p in left]
        assert marked_processes(stack_id) == []
        busy = [port for port in ports if port_in_use(port)]
        assert busy == [], f"ports still in use after Ctrl-C: {busy}"
        return code, before, ports

    def cleanup(self) -> None:
        """Never leave anything behind, even when the test failed."""
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait()
        stack_id = self.state().get("stack_id")
        marked = [m.process for m in marked_processes(stack_id)] if stack_id else []
        for proc in alive([*self.seen.values(), *marked]):
            proc.kill()
