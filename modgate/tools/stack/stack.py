"""The local stack: its processes started in order, health-gated, stopped cleanly.

:class:`Stack` starts what :func:`~modgate.tools.stack.specs.stack_specs` plans (trace store,
the three model services, the gateway), waits until every one is healthy, and stops them:
the gateway first (no new work), then the rest, each child's whole process group. PIDs, ports
and log paths go to a state file under $MODGATE_HOME (default ~/.modgate), which also lets a
new stack clean up after a supervisor that was SIGKILLed.

`modgate up`, `modgate demo`, the end-to-end and reliability tests and the benchmarks all
start the stack through this class.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from collections.abc import Callable

import psutil

from modgate.ports import http_url
from modgate.tools.stack.process import ManagedProcess, port_in_use
from modgate.tools.stack.specs import StackConfig, local_upstreams_yaml, stack_specs

STATE_FILE = "stack.json"

Say = Callable[[str], None]


class StackError(RuntimeError):
    pass


class StackInterrupted(StackError):
    """Asked to stop (a signal) while starting."""


class Stack:
    def __init__(self, config: StackConfig | None = None) -> None:
        self.config = config or StackConfig()
        self.home = self.config.home
        self.log_dir = self.home / "logs"
        self.state_path = self.home / STATE_FILE
        self.processes: dict[str, ManagedProcess] = {}
        for spec in stack_specs(self.config):
            self.processes[spec.name] = ManagedProcess(spec, self.log_dir)

    @property
    def gateway_target(self) -> str:
        return f"{self.config.host}:{self.config.ports['gateway']}"

    @property
    def metrics_url(self) -> str:
        return f"{http_url(self.config.ports['metrics'], self.config.host)}/metrics"

    # --- lifecycle ------------------------------------------------------------------------

    def check_ports(self) -> None:
        busy = [
            f"{name} {port}"
            for name, port in self.config.ports.items()
            if (name != "traces" or self.config.trace_store) and port_in_use(port, self.config.host)
        ]
        if busy:
            raise StackError(
                f"port(s) already in use on {self.config.host}: {', '.join(busy)}. Is another `modgate up` "
                f"running (see {self.state_path})? Stop it, or pick other ports (modgate up --help)."
            )

    def start(
        self,
        *,
        timeout_s: float = 300.0,
        say: Say | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> None:
        """Start every process and return once all are healthy; on failure stop them all."""
        say = say or (lambda _line: None)
        self.home.mkdir(parents=True, exist_ok=True)
        self._check_previous()
        self.check_ports()
        upstreams = self.config.upstreams_yaml or local_upstreams_yaml(self.config.host, self.config.ports)
        self.config.upstreams_file.write_text(upstreams, encoding="utf-8")
        started = time.monotonic()
        try:
            for proc in self.processes.values():
                if should_stop and should_stop():
                    raise StackInterrupted("interrupted while starting")
                proc.start()
                say(f"started {proc.name:<8} pid {proc.pid:<7} port {proc.spec.port}  log {proc.log_path}")
            self.write_state("starting")
            self.wait_ready(
                list(self.processes), timeout_s=timeout_s, say=say, started=started, should_stop=should_stop
            )
        except BaseException:
            self.stop(say=say)
            raise
        self.write_state("ready")

    def wait_ready(
        self,
        names: list[str],
        *,
        timeout_s: float = 300.0,
        say: Say | None = None,
        started: float | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> None:
        say = say or (lambda _line: None)
        started = started or time.monotonic()
        pending = list(names)
        last_note = time.monotonic()
        while pending:
            if should_stop and should_stop():
                raise StackInterrupted(f"interrupted while waiting for {', '.join(pending)}")
            for name in list(pending):
                proc = self.processes[name]
                code = proc.exited()
                if code is not None:
                    raise StackError(
                        f"{name} exited with status {code} while starting; last log lines "
                        f"({proc.log_path}):\n{proc.log_tail()}"
                    )
                if proc.spec.ready():
                    proc.ready_at = time.monotonic()
                    pending.remove(name)
                    say(f"ready   {name:<8} after {proc.ready_at - proc.started_at:5.1f} s")
            if not pending:
                break
            elapsed = time.monotonic() - started
            if elapsed > timeout_s:
                raise StackError(
                    f"not healthy after {timeout_s:.0f} s: {', '.join(pending)} (see {self.log_dir})"
                )
            if time.monotonic() - last_note >= 10:
                say(f"waiting for {', '.join(pending)} ({elapsed:.0f} s; models load once at start)")
                last_note = time.monotonic()
            time.sleep(0.25)

    def restart(self, name: str, *, timeout_s: float = 300.0) -> None:
        proc = self.processes[name]
        proc.stop()
        proc.start()
        self.wait_ready([name], timeout_s=timeout_s)
        self.write_state("ready")

    def stop(self, *, grace_s: float = 10.0, say: Say | None = None) -> None:
        """Gateway first (no new work), then everything else at once; SIGKILL after grace_s."""
        say = say or (lambda _line: None)
        live = [p for p in self.processes.values() if p.popen is not None and not p.stopped]
        front = [p for p in live if p.name == "gateway"]
        rest = [p for p in reversed(live) if p.name != "gateway"]
        for wave in (front, rest):
            for proc in wave:
                proc.terminate()
            deadline = time.monotonic() + grace_s
            for proc in wave:
                clean = proc.wait_gone(deadline)
                proc.force()
                say(f"stopped {proc.name}" + ("" if clean else f" (killed after {grace_s:.0f} s)"))
        with contextlib.suppress(FileNotFoundError):
            self.state_path.unlink()

    def first_exited(self) -> ManagedProcess | None:
        return next((p for p in self.processes.values() if p.exited() is not None), None)

    def pids(self) -> list[int]:
        """Every live process of the stack (leaders and descendants)."""
        return [p.pid for proc in self.processes.values() for p in proc.members()]

    # --- state file -----------------------------------------------------------------------

    def write_state(self, status: str) -> None:
        state = {
            "status": status,
            "supervisor_pid": os.getpid(),
            "gateway": self.gateway_target,
            "metrics": self.metrics_url,
            "home": str(self.home),
            "processes": {
                name: {
                    "pid": proc.pid if proc.popen else None,
                    "pgid": proc.pid if proc.popen else None,
                    "port": proc.spec.port,
                    "log": str(proc.log_path),
                    "argv": proc.spec.argv,
                }
                for name, proc in self.processes.items()
            },
        }
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2), encoding="utf-8")
        tmp.replace(self.state_path)

    def _check_previous(self) -> None:
        try:
            previous = json.loads(self.state_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        supervisor = previous.get("supervisor_pid")
        if supervisor and supervisor != os.getpid() and psutil.pid_exists(supervisor):
            raise StackError(
                f"a stack is already running (supervisor pid {supervisor}, state {self.state_path}); "
                f"stop it with Ctrl-C in its terminal or `kill -INT {supervisor}`"
            )
        # A supervisor that died without cleaning up (SIGKILL): stop what it left behind.
        for info in previous.get("processes", {}).values():
            pgid = info.get("pgid")
            if pgid:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pgid, signal.SIGKILL)
        self.state_path.unlink(missing_ok=True)
