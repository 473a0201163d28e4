"""Keeping the local stack's processes running: restart with backoff, report, give up if hopeless.

:class:`Supervisor` watches every :class:`~modgate.tools.stack.process.ManagedProcess` of a
started stack; :meth:`Supervisor.tick` (a few times a second, from `modgate up`'s loop or a
background thread) acts on what changed:

- a process exited (or was killed with its whole group): what it left behind is killed (its
  marker, :mod:`.markers`, finds BentoML workers in other sessions), and it is started again
  after a backoff of 1, 2, 4 ... 30 s (:class:`RestartPolicy`). A process that stays healthy
  for ``healthy_after_s`` has its count of failures reset; after ``max_rapid_failures`` in a
  row the supervisor gives up on it and says so (the rest of the stack keeps running);
- a restarted process is health-gated like the first start (``ready_timeout_s``);
- a running process that stays unhealthy for ``unhealthy_restart_s`` is restarted;
- a worker of a running process exited (BentoML's circus respawns it in place): reported.

Every change is an :class:`Event`, said on the console and kept (the last ones) in the state
file, with each process's phase and restart count.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from modgate.ports import HOST
from modgate.tools.stack.holders import describe_holder, port_holders
from modgate.tools.stack.process import ManagedProcess, port_in_use

Say = Callable[[str], None]
KEPT_EVENTS = 50
# Access-log lines of health probes: what a service's log ends with, and says nothing.
PROBE_LINES = ('"GET /readyz', '"GET /livez', "path=/readyz", "path=/livez")


@dataclass(frozen=True)
class RestartPolicy:
    first_delay_s: float = 1.0
    max_delay_s: float = 30.0
    healthy_after_s: float = 60.0  # healthy this long: the next failure counts as the first
    max_rapid_failures: int = 5  # failures in a row (none healthy that long) before giving up
    ready_timeout_s: float = 300.0  # a restarted process must be healthy within this
    # A running process unhealthy this long is restarted. As long as a start may take: BentoML
    # respawns a dead worker itself, and its model load (vision: minutes on a busy machine)
    # must not be cut short.
    unhealthy_restart_s: float = 300.0
    health_interval_s: float = 2.0
    port_free_wait_s: float = 10.0  # after killing what a dead process left, for its port

    def delay(self, failures: int) -> float:
        return float(min(self.first_delay_s * 2 ** max(failures - 1, 0), self.max_delay_s))


@dataclass(frozen=True)
class Event:
    at: float  # time.time()
    process: str
    kind: str  # died | restarting | ready | gave_up | worker_exited | worker_started | unhealthy
    detail: str


@dataclass
class Watch:
    """What the supervisor knows about one process."""

    name: str
    phase: str = "ready"  # ready | starting | backoff | failed | stopped
    restarts: int = 0
    failures: int = 0  # in a row
    next_start_at: float = 0.0
    ready_since: float | None = None
    unhealthy_since: float | None = None
    last_check: float = 0.0
    last_exit: str | None = None
    workers: set[int] = field(default_factory=set)
    worker_exits: int = 0


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with status {code}"


def _tail(proc: ManagedProcess, lines: int = 5) -> str:
    """The last lines of its log, without the access lines of the supervisor's own probes."""
    kept = [line for line in proc.log_tail(200).splitlines() if not any(p in line for p in PROBE_LINES)]
    return "\n".join("    " + line for line in kept[-lines:])


class Supervisor:
    def __init__(
        self,
        processes: dict[str, ManagedProcess],
        policy: RestartPolicy | None = None,
        say: Say | None = None,
        on_change: Callable[[], None] | None = None,
        host: str = HOST,
    ) -> None:
        self.processes = processes
        self.host = host
        self.policy = policy or RestartPolicy()
        self.say = say or (lambda _line: None)
        self.on_change = on_change or (lambda: None)
        now = time.monotonic()
        self.watches = {name: Watch(name, ready_since=now) for name in processes}
        self.events: list[Event] = []
        for name, proc in processes.items():
            self.watches[name].workers = {p.pid for p in proc.track()}

    def _event(self, watch: Watch, kind: str, detail: str) -> None:
        self.events.append(Event(time.time(), watch.name, kind, detail))
        del self.events[:-KEPT_EVENTS]
        self.say(f"{watch.name}: {detail}")
        self.on_change()

    def tick(self) -> None:
        now = time.monotonic()
        for name, proc in self.processes.items():
            watch = self.watches[name]
            if proc.stopped:  # stopped on purpose (a test's kill(), the stack stopping)
                watch.phase = "stopped"
                continue
            if watch.phase == "stopped":  # ... and started again by whoever stopped it
                watch.phase = "starting"
            if watch.phase == "failed":
                continue
            if watch.phase == "backoff":
                if now >= watch.next_start_at:
                    self._restart(watch, proc, now)
                continue
            code = proc.exited()
            if code is not None:
                self._died(watch, proc, describe_exit(code), now)
            elif watch.phase == "starting":
                self._check_start(watch, proc, now)
            elif now - watch.last_check >= self.policy.health_interval_s:
                self._check_running(watch, proc, now)

    def _check_start(self, watch: Watch, proc: ManagedProcess, now: float) -> None:
        if proc.spec.ready():
            watch.phase, watch.ready_since, watch.last_check = "ready", now, now
            proc.ready_at = now
            watch.workers = {p.pid for p in proc.track()}
            took = now - proc.started_at
            self._event(watch, "ready", f"serving again {took:.1f} s after restart {watch.restarts}")
        elif now - proc.started_at > self.policy.ready_timeout_s:
            self._died(watch, proc, f"not healthy {self.policy.ready_timeout_s:.0f} s after its restart", now)

    def _check_running(self, watch: Watch, proc: ManagedProcess, now: float) -> None:
        watch.last_check = now
        self._check_workers(watch, proc)
        if proc.spec.ready():
            watch.unhealthy_since = None
        else:
            watch.unhealthy_since = watch.unhealthy_since or now
            if now - watch.unhealthy_since >= self.policy.unhealthy_restart_s:
                self._died(watch, proc, f"unhealthy for {now - watch.unhealthy_since:.0f} s", now)
                return
        if watch.failures and watch.ready_since and now - watch.ready_since >= self.policy.healthy_after_s:
            watch.failures = 0

    def _check_workers(self, watch: Watch, proc: ManagedProcess) -> None:
        current = {p.pid for p in proc.track()}
        gone, new = watch.workers - current, current - watch.workers
        if gone:
            watch.worker_exits += len(gone)
            pids = ", ".join(map(str, sorted(gone)))
            detail = f"worker pid {pids} exited (its parent {proc.pid} starts another)"
            self._event(watch, "worker_exited", detail)
        if new and watch.worker_exits:
            self._event(watch, "worker_started", f"new worker pid {', '.join(map(str, sorted(new)))}")
        watch.workers = current

    def _died(self, watch: Watch, proc: ManagedProcess, why: str, now: float) -> None:
        proc.force()  # the group, and whatever it left in other sessions (BentoML workers)
        policy = self.policy
        healthy_long = watch.ready_since is not None and now - watch.ready_since >= policy.healthy_after_s
        watch.failures = 1 if healthy_long else watch.failures + 1
        watch.last_exit, watch.ready_since, watch.unhealthy_since = why, None, None
        tail = _tail(proc)
        if watch.failures >= policy.max_rapid_failures:
            watch.phase = "failed"
            self._event(
                watch,
                "gave_up",
                f"{why}; failed {watch.failures} times in a row, giving up on it (the rest of the "
                f"stack keeps running; see {proc.log_path}, fix it and start `modgate up` again). "
                f"Last lines:\n{tail}",
            )
            return
        delay = policy.delay(watch.failures)
        watch.phase, watch.next_start_at = "backoff", now + delay
        self._event(
            watch,
            "died",
            f"{why}; restarting in {delay:.0f} s (failure {watch.failures} of "
            f"{policy.max_rapid_failures} in a row). Last lines of {proc.log_path}:\n{tail}",
        )

    def _restart(self, watch: Watch, proc: ManagedProcess, now: float) -> None:
        port = proc.spec.port
        deadline = time.monotonic() + self.policy.port_free_wait_s
        while port and port_in_use(port, self.host) and time.monotonic() < deadline:
            proc.force()
            time.sleep(0.2)
        if port and port_in_use(port, self.host):
            held = "; ".join(describe_holder(watch.name, port, h) for h in port_holders(port, self.host))
            self._died(watch, proc, f"cannot restart: {held}", time.monotonic())
            return
        proc.start()
        watch.restarts += 1
        watch.phase, watch.workers, watch.unhealthy_since = "starting", set(), None
        self._event(watch, "restarting", f"restart {watch.restarts}: pid {proc.pid}, port {port}")

    def state(self) -> dict[str, dict[str, object]]:
        """Per process: phase, restarts, last exit, worker exits (for the state file)."""
        return {
            name: {
                "status": w.phase,
                "restarts": w.restarts,
                "failures_in_a_row": w.failures,
                "last_exit": w.last_exit,
                "worker_exits": w.worker_exits,
            }
            for name, w in self.watches.items()
        }
