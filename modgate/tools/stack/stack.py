"""The local stack: its processes started in order, health-gated, supervised, stopped cleanly.

:class:`Stack` starts what :func:`~modgate.tools.stack.specs.stack_specs` plans (trace store,
the three model services, the gateway), waits until every one is healthy, optionally keeps
them running (:meth:`Stack.supervise`, or :meth:`Stack.supervise_in_background`: restarts with
backoff, see :mod:`.supervisor`), and stops them: the gateway first (no new work), then the
rest, each child's whole process group, then every process that still carries the stack's
marker (:mod:`.markers`: BentoML workers live in sessions of their own). PIDs, ports, log
paths, restarts and events go to a state file under $MODGATE_HOME (default ~/.modgate),
which also lets a new stack, or `modgate down`, clean up after a supervisor that was SIGKILLed.

`modgate up`, `modgate demo`, the end-to-end and reliability tests and the benchmarks all
start the stack through this class.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable
from dataclasses import asdict

from modgate.ports import http_url
from modgate.tools.stack.holders import describe_holder, port_holders
from modgate.tools.stack.markers import StackMarker, marked_processes, terminate_all
from modgate.tools.stack.process import ManagedProcess, port_in_use
from modgate.tools.stack.specs import StackConfig, local_upstreams_yaml, stack_specs
from modgate.tools.stack.state import STATE_FILE, leftovers, read_state, state_supervisor_alive, write_state
from modgate.tools.stack.supervisor import RestartPolicy, Supervisor

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
        self.marker = StackMarker.new()
        self.processes: dict[str, ManagedProcess] = {}
        for spec in stack_specs(self.config):
            self.processes[spec.name] = ManagedProcess(spec, self.log_dir, self.marker)
        self.supervisor: Supervisor | None = None
        self.status = "new"
        self._lock = threading.RLock()  # the supervisor thread and stop() never act at once
        self._stop_supervising = threading.Event()
        self._supervisor_thread: threading.Thread | None = None

    @property
    def gateway_target(self) -> str:
        return f"{self.config.host}:{self.config.ports['gateway']}"

    @property
    def metrics_url(self) -> str:
        return f"{http_url(self.config.ports['metrics'], self.config.host)}/metrics"

    @property
    def console_url(self) -> str | None:
        port = self.config.console_port
        return None if port is None else http_url(port, self.config.host)

    def _ports(self) -> dict[str, int]:
        extra = {} if self.config.console_port is None else {"console": self.config.console_port}
        return {**self.config.ports, **extra}

    # --- lifecycle ------------------------------------------------------------------------

    def check_ports(self) -> None:
        """Refuse to start on a busy port, naming who holds it and how to clear it."""
        busy = [
            describe_holder(name, port, holder)
            for name, port in self._ports().items()
            if (name != "traces" or self.config.trace_store) and port_in_use(port, self.config.host)
            for holder in port_holders(port, self.config.host)
        ]
        if busy:
            raise StackError(f"cannot start on {self.config.host}:\n  " + "\n  ".join(busy))

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
        self._check_previous(say)
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

    # --- supervision ----------------------------------------------------------------------

    def _supervisor(self, policy: RestartPolicy | None, say: Say | None) -> Supervisor:
        self.supervisor = Supervisor(
            self.processes,
            policy or RestartPolicy(),
            say,
            on_change=lambda: self.write_state(self.status),
            host=self.config.host,
        )
        return self.supervisor

    def supervise(
        self,
        should_stop: Callable[[], bool],
        *,
        policy: RestartPolicy | None = None,
        say: Say | None = None,
        interval_s: float = 0.2,
    ) -> None:
        """Keep the started stack running until should_stop() (see :mod:`.supervisor`)."""
        self._supervise(self._supervisor(policy, say), should_stop, interval_s)

    def _supervise(self, supervisor: Supervisor, should_stop: Callable[[], bool], interval_s: float) -> None:
        self.write_state(self.status)
        while not should_stop() and not self._stop_supervising.is_set():
            with self._lock:
                if self._stop_supervising.is_set():
                    break
                supervisor.tick()
            time.sleep(interval_s)

    def supervise_in_background(self, *, policy: RestartPolicy | None = None, say: Say | None = None) -> None:
        """:meth:`supervise` in a daemon thread until :meth:`stop` (tests, benchmarks);
        :attr:`supervisor` is set when this returns."""
        self._stop_supervising.clear()
        thread = threading.Thread(
            target=self._supervise,
            args=(self._supervisor(policy, say), self._stop_supervising.is_set, 0.2),
            name="modgate-stack-supervisor",
            daemon=True,
        )
        self._supervisor_thread = thread
        thread.start()

    def _stop_supervisor(self) -> None:
        self._stop_supervising.set()
        thread, self._supervisor_thread = self._supervisor_thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=30)

    # --- stop -----------------------------------------------------------------------------

    def stop(self, *, grace_s: float = 10.0, say: Say | None = None) -> None:
        """Gateway first (no new work), then everything else at once; SIGKILL after grace_s;
        then whatever still carries the stack's marker."""
        say = say or (lambda _line: None)
        self._stop_supervisor()
        with self._lock:
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
            strays = [m.process for m in marked_processes(self.marker.stack_id)]
            if strays:
                say(f"killing {len(strays)} leftover process(es): {', '.join(str(p.pid) for p in strays)}")
                terminate_all(strays, grace_s=2.0)
            with contextlib.suppress(FileNotFoundError):
                self.state_path.unlink()

    def first_exited(self) -> ManagedProcess | None:
        return next((p for p in self.processes.values() if p.exited() is not None), None)

    def pids(self) -> list[int]:
        """Every live process of the stack (leaders and descendants)."""
        return [p.pid for proc in self.processes.values() for p in proc.members()]

    def marked_pids(self) -> list[int]:
        """Every live process that carries this stack's marker, wherever it runs."""
        return sorted(m.pid for m in marked_processes(self.marker.stack_id))

    # --- state file -----------------------------------------------------------------------

    def write_state(self, status: str) -> None:
        self.status = status
        supervised = self.supervisor.state() if self.supervisor else {}
        state = {
            "status": status,
            "supervisor_pid": self.marker.supervisor_pid,
            "supervisor_started": self.marker.supervisor_started,
            "stack_id": self.marker.stack_id,
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
                    **supervised.get(name, {}),
                }
                for name, proc in self.processes.items()
            },
            "events": [asdict(e) for e in self.supervisor.events] if self.supervisor else [],
        }
        write_state(self.state_path, state)

    def _check_previous(self, say: Say) -> None:
        previous = read_state(self.state_path)
        if previous is None:
            return
        supervisor = previous.get("supervisor_pid")
        if supervisor != os.getpid() and state_supervisor_alive(previous):
            raise StackError(
                f"a stack is already running (supervisor pid {supervisor}, state {self.state_path}); "
                f"stop it with Ctrl-C in its terminal, `modgate down` or `kill -INT {supervisor}`"
            )
        # A supervisor that died without cleaning up (SIGKILL): stop what it left behind.
        left = leftovers(previous)
        if left:
            pids = ", ".join(str(p.pid) for p in left)
            say(f"stopping {len(left)} process(es) a previous stack left: {pids}")
            terminate_all(left, grace_s=5.0)
        self.state_path.unlink(missing_ok=True)
