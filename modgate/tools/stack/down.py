"""`modgate down`: stop the local stack of this $MODGATE_HOME and whatever dead stacks left.

1. The stack in $MODGATE_HOME/stack.json: if its `modgate up` still runs, it gets SIGTERM and
   stops its processes itself (gateway first, workers included); then anything still carrying
   that stack's marker is killed.
2. Orphans of any modgate stack of this user: processes with a stack marker whose supervisor
   is gone (a `modgate up` that was SIGKILLed, a BentoML worker whose parent died first).
   A stack whose supervisor still runs elsewhere is left alone.

Exit status 0 when nothing of those is left running, 1 otherwise.
"""

from __future__ import annotations

import argparse
import signal
import sys

import psutil

from modgate.tools.stack.markers import marked_processes, terminate_all, wait_gone
from modgate.tools.stack.specs import modgate_home
from modgate.tools.stack.state import STATE_FILE, leftovers, read_state, state_supervisor_alive


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--grace", type=float, default=10.0, help="seconds a process gets to exit before SIGKILL (default 10)"
    )


def _say(line: str) -> None:
    print(f"modgate down: {line}", file=sys.stderr, flush=True)


def _stop_supervisor(state: dict[str, object], grace_s: float) -> bool:
    """SIGTERM a live `modgate up` and wait for it to stop its stack; False if it would not."""
    pid = int(state["supervisor_pid"])  # type: ignore[call-overload]
    try:
        supervisor = psutil.Process(pid)
        _say(f"stopping the stack of supervisor pid {pid} (SIGTERM)")
        supervisor.send_signal(signal.SIGTERM)
    except psutil.NoSuchProcess:
        return True
    except psutil.AccessDenied:
        _say(f"not allowed to signal supervisor pid {pid} (another user's stack?)")
        return False
    # It stops the gateway, then the rest, each with its own grace period.
    return not wait_gone([supervisor], 2 * grace_s + 30.0)


def run(args: argparse.Namespace) -> int:
    state_path = modgate_home() / STATE_FILE
    state = read_state(state_path)
    targets: dict[int, psutil.Process] = {}
    if state is not None:
        if state_supervisor_alive(state) and not _stop_supervisor(state, args.grace):
            _say(f"supervisor pid {state['supervisor_pid']} did not stop; killing its processes")
        targets.update((p.pid, p) for p in leftovers(state))
    targets.update((m.pid, m.process) for m in marked_processes() if m.orphaned)
    if not targets:
        _say("nothing to stop" if state is None else f"stack in {state_path} is stopped")
    for pid, process in sorted(targets.items()):
        try:
            _say(f"stopping pid {pid}: {' '.join(process.cmdline())[:120]}")
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    survivors = terminate_all(targets.values(), args.grace)
    if state is not None and not state_supervisor_alive(state):
        state_path.unlink(missing_ok=True)
    if survivors:
        _say(f"could not stop: {', '.join(str(p.pid) for p in survivors)}")
        return 1
    return 0
