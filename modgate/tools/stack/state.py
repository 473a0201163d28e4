"""The stack's state file ($MODGATE_HOME/stack.json) and what a dead stack left behind.

The file says which supervisor runs the stack (pid and start time), the stack's marker id
(:mod:`.markers`), and per process its pid, port, log, command, phase and restarts, plus the
supervisor's last events. `modgate down`, a new `modgate up` and the tests read it.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import psutil

from modgate.tools.stack.markers import marked_processes, supervisor_alive

STATE_FILE = "stack.json"


def write_state(path: Path, state: dict[str, Any]) -> None:
    """Atomically: a reader never sees half a file."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2), encoding="utf-8")
    tmp.replace(path)


def read_state(path: Path) -> dict[str, Any] | None:
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) else None


def state_supervisor_alive(state: dict[str, Any]) -> bool:
    return supervisor_alive(state.get("supervisor_pid"), state.get("supervisor_started"))


def leftovers(state: dict[str, Any]) -> list[psutil.Process]:
    """Processes of the stack in `state` that are still running: every one carrying its marker,
    and (state files written before markers existed) the recorded leaders whose command line
    still matches, so a reused pid is never taken for one."""
    found: dict[int, psutil.Process] = {}
    stack_id = state.get("stack_id")
    if stack_id:
        found.update((m.pid, m.process) for m in marked_processes(stack_id))
    for info in state.get("processes", {}).values():
        pid, argv = info.get("pid"), info.get("argv")
        if not pid or not argv or pid in found:
            continue
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            leader = psutil.Process(pid)
            if leader.cmdline() == argv:
                found[pid] = leader
                found.update((c.pid, c) for c in leader.children(recursive=True))
    return list(found.values())
