"""Which processes belong to a local stack: an environment marker every child inherits.

Process groups are not enough: BentoML's workers are started by its circus arbiter in a
session of their own, so ``killpg`` of a service misses them, and when the arbiter dies first
they live on with parent 1, holding the service's port. A process tree is not enough either:
once the leader is gone, nothing links the orphan to it. What does survive is the
environment a process was started with, which every descendant inherits (circus copies it,
multiprocessing keeps it) and which ``/proc/<pid>/environ`` shows. So every child of a stack
is started with:

- ``MODGATE_STACK_ID``: a random id per stack (one `modgate up`, one :class:`Stack`);
- ``MODGATE_STACK_PROCESS``: the child's name (speech, vision, text, gateway, traces);
- ``MODGATE_STACK_SUPERVISOR``: ``<pid>:<start time>`` of the supervising process, so a
  process whose supervisor is gone (or whose pid was reused) is known to be an orphan.

:func:`marked_processes` sweeps ``/proc`` (via psutil, about 0.1 s) for them: at stop, before a
restart, for a stale port holder and in `modgate down`.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import time
from collections.abc import Iterable
from dataclasses import dataclass

import psutil

STACK_ID_VAR = "MODGATE_STACK_ID"
PROCESS_VAR = "MODGATE_STACK_PROCESS"
SUPERVISOR_VAR = "MODGATE_STACK_SUPERVISOR"


def _started(pid: int) -> float | None:
    try:
        return psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def supervisor_alive(pid: int | None, started: float | None) -> bool:
    """Whether the process `pid` still runs and is the one that started at `started`."""
    if not pid:
        return False
    now_started = _started(pid)
    if now_started is None:
        return False
    return started is None or abs(now_started - started) < 1.0


@dataclass(frozen=True)
class StackMarker:
    """The marker of one stack, supervised by this process."""

    stack_id: str
    supervisor_pid: int
    supervisor_started: float

    @classmethod
    def new(cls) -> StackMarker:
        pid = os.getpid()
        return cls(secrets.token_hex(6), pid, _started(pid) or time.time())

    def env(self, name: str) -> dict[str, str]:
        return {
            STACK_ID_VAR: self.stack_id,
            PROCESS_VAR: name,
            SUPERVISOR_VAR: f"{self.supervisor_pid}:{self.supervisor_started:.2f}",
        }


@dataclass(frozen=True)
class MarkedProcess:
    """A running process that carries a stack marker."""

    process: psutil.Process
    stack_id: str
    name: str
    supervisor_pid: int | None
    supervisor_started: float | None
    home: str | None  # its MODGATE_HOME: where that stack's state file is

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def orphaned(self) -> bool:
        """Its supervisor is gone: nothing will ever stop it but a sweep."""
        return not supervisor_alive(self.supervisor_pid, self.supervisor_started)


def read_marker(process: psutil.Process) -> MarkedProcess | None:
    """The process's stack marker, or None (no marker, gone, or another user's)."""
    try:
        env = process.environ()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess, OSError):
        return None
    stack_id = env.get(STACK_ID_VAR)
    if not stack_id:
        return None
    pid_text, _, started_text = env.get(SUPERVISOR_VAR, "").partition(":")
    try:
        supervisor_pid: int | None = int(pid_text)
        supervisor_started: float | None = float(started_text)
    except ValueError:
        supervisor_pid = supervisor_started = None
    name = env.get(PROCESS_VAR, "?")
    return MarkedProcess(process, stack_id, name, supervisor_pid, supervisor_started, env.get("MODGATE_HOME"))


def marked_processes(stack_id: str | None = None, name: str | None = None) -> list[MarkedProcess]:
    """Every live process (this user can see) with a stack marker, optionally of one stack and
    one child name. Zombies are left out: they hold nothing and their parent reaps them."""
    found = []
    me = os.getpid()
    for process in psutil.process_iter():
        if process.pid == me:
            continue
        marked = read_marker(process)
        if marked is None or (stack_id is not None and marked.stack_id != stack_id):
            continue
        if name is not None and marked.name != name:
            continue
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            if process.status() != psutil.STATUS_ZOMBIE:
                found.append(marked)
    return found


def alive(processes: Iterable[psutil.Process]) -> list[psutil.Process]:
    """Those still running (a zombie counts as gone: it holds no port and no memory)."""
    running = []
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                running.append(process)
    return running


def wait_gone(processes: Iterable[psutil.Process], timeout_s: float) -> list[psutil.Process]:
    """Wait up to timeout_s for the processes to exit; returns those still running."""
    pending = list(processes)
    deadline = time.monotonic() + timeout_s
    while True:
        pending = alive(pending)
        if not pending or time.monotonic() >= deadline:
            return pending
        time.sleep(0.05)


def terminate_all(processes: Iterable[psutil.Process], grace_s: float) -> list[psutil.Process]:
    """SIGTERM, up to grace_s to exit, then SIGKILL; returns any that survived even that."""
    targets = alive(processes)
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        if not targets:
            break
        for process in targets:
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                process.send_signal(sig)
        targets = wait_gone(targets, wait_s)
    return targets
