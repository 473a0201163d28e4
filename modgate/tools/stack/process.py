"""One child process of the local stack, in a session of its own, stopped with everything it started.

A :class:`ManagedProcess` starts its command in its own session (so a terminal's Ctrl-C
reaches only the supervisor, which then stops the children in order) and is stopped by
signalling the whole group: SIGTERM, a grace period, then SIGKILL. Descendants that left the
group (BentoML's workers run in sessions of their own) are found two ways and killed too:
the descendants seen while the leader lived (:meth:`ManagedProcess.track`) and, when the
child was started with a stack marker (:mod:`.markers`), every process carrying it, which
also finds a worker whose leader died first. :class:`ProcessSpec` says what to run and how
to tell it is ready; ports are checked and chosen with :func:`free_port` and
:func:`port_in_use`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from modgate.ports import HOST
from modgate.tools.stack.markers import StackMarker, alive, marked_processes, wait_gone


def free_port(host: str = HOST) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_in_use(port: int, host: str = HOST) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


@dataclass
class ProcessSpec:
    name: str
    argv: list[str]
    port: int
    ready: Callable[[], bool]
    env: dict[str, str] = field(default_factory=dict)  # on top of the parent's environment


class ManagedProcess:
    """A child in its own session; stop() leaves no process it started alive."""

    def __init__(self, spec: ProcessSpec, log_dir: Path, marker: StackMarker | None = None) -> None:
        self.spec = spec
        self.marker = marker
        self.log_path = log_dir / f"{spec.name}.log"
        self.popen: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0
        self.ready_at: float | None = None
        self.stopped = False  # stopped on purpose (a supervisor leaves it alone)
        self._seen: dict[int, psutil.Process] = {}  # descendants seen while the leader lived
        self.starts = 0

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        marker_env = self.marker.env(self.name) if self.marker else {}
        # A restart appends: the log keeps what its predecessor said before it died.
        with self.log_path.open("ab" if self.starts else "wb") as log:
            self.popen = subprocess.Popen(
                self.spec.argv,
                env={**os.environ, **self.spec.env, **marker_env},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # own session + process group: pgid == pid
            )
        self.starts += 1
        self.started_at = time.monotonic()
        self.ready_at = None
        self.stopped = False
        self._seen = {}

    def exited(self) -> int | None:
        return None if self.popen is None else self.popen.poll()

    def members(self) -> list[psutil.Process]:
        """The leader and every descendant still alive (BentoML workers included)."""
        if self.popen is None:
            return []
        try:
            leader = psutil.Process(self.pid)
            return [leader, *leader.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def track(self) -> list[psutil.Process]:
        """Remember the live descendants (to kill them even once the leader is gone); returns them."""
        descendants = self.members()[1:]
        for proc in descendants:
            self._seen.setdefault(proc.pid, proc)
        return descendants

    def leftovers(self) -> list[psutil.Process]:
        """Every live process of this child outside its process group's reach: descendants seen
        before, and (when marked) whatever carries its marker."""
        found = {p.pid: p for p in alive(self._seen.values())}
        if self.marker is not None:
            for marked in marked_processes(self.marker.stack_id, self.name):
                found.setdefault(marked.pid, marked.process)
        if self.popen is not None:
            found.pop(self.pid, None)
        return list(found.values())

    def _group_alive(self) -> bool:
        if self.popen is None:
            return False
        self.popen.poll()  # reap the leader if it exited, so it does not linger as a zombie
        try:
            os.killpg(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        # A group whose only members are zombies waiting to be reaped is as good as gone.
        return any(p.status() != psutil.STATUS_ZOMBIE for p in _group_members(self.pid))

    def signal(self, sig: int) -> None:
        if self.popen is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)

    def kill(self) -> None:
        """SIGKILL the group and everything it started now, and mark it stopped on purpose."""
        self.stopped = True
        self.track()
        self.signal(signal.SIGKILL)
        self._finish(5.0)

    def stop(self, grace_s: float = 10.0) -> None:
        """SIGTERM the group, wait up to grace_s, then SIGKILL whatever is left."""
        self.terminate()
        self.wait_gone(time.monotonic() + grace_s)
        self.force()

    def terminate(self) -> None:
        if self.popen is None or self.stopped:
            return
        self.stopped = True
        self.track()  # before the group starts to exit
        self.signal(signal.SIGTERM)

    def wait_gone(self, deadline: float) -> bool:
        """Wait until the group and the descendants seen are gone (their leader stops its
        workers on SIGTERM); False if some are still there at `deadline`."""
        while time.monotonic() < deadline:
            if not self._group_alive() and not alive(self._seen.values()):
                return True
            time.sleep(0.05)
        return not self._group_alive() and not alive(self._seen.values())

    def force(self) -> None:
        """SIGKILL the group, then every leftover (see :meth:`leftovers`); reap the leader."""
        if self.popen is None:
            return
        if self._group_alive():
            self.signal(signal.SIGKILL)
        self._finish(5.0)

    def _finish(self, timeout_s: float) -> None:
        leftovers = self.leftovers()
        for proc in leftovers:
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                proc.kill()
        wait_gone(leftovers, timeout_s)
        if self.popen is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=timeout_s)

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def _group_members(pgid: int) -> list[psutil.Process]:
    members = []
    for proc in psutil.process_iter(["pid"]):
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied, ProcessLookupError):
            if os.getpgid(proc.pid) == pgid:
                members.append(proc)
    return members
