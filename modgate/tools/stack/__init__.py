"""The local stack (`modgate up`): child processes, health-gated, supervised, stopped cleanly.

``process`` (one child in its own session, stopped with everything it started), ``markers``
(the environment marker that finds a stack's processes in any session), ``health`` (readiness
checks), ``specs`` (what runs, with which environment and threads), ``supervisor`` (restart
with backoff, report), ``holders`` (who holds a busy port, how to clear it), ``state`` (the
state file), ``stack`` (:class:`Stack`: start in order, wait, supervise, stop), ``up`` and
``down`` (the commands).
"""

from __future__ import annotations

from modgate.tools.stack.health import grpc_serving, http_ready
from modgate.tools.stack.markers import StackMarker, marked_processes
from modgate.tools.stack.process import ManagedProcess, ProcessSpec, free_port, port_in_use
from modgate.tools.stack.specs import (
    StackConfig,
    gateway_spec,
    modgate_home,
    service_spec,
    thread_plan,
    trace_store_spec,
    usable_cores,
)
from modgate.tools.stack.stack import Stack, StackError, StackInterrupted
from modgate.tools.stack.state import STATE_FILE, read_state
from modgate.tools.stack.supervisor import RestartPolicy, Supervisor

__all__ = [
    "STATE_FILE",
    "ManagedProcess",
    "ProcessSpec",
    "RestartPolicy",
    "Stack",
    "StackConfig",
    "StackError",
    "StackInterrupted",
    "StackMarker",
    "Supervisor",
    "free_port",
    "gateway_spec",
    "grpc_serving",
    "http_ready",
    "marked_processes",
    "modgate_home",
    "port_in_use",
    "read_state",
    "service_spec",
    "thread_plan",
    "trace_store_spec",
    "usable_cores",
]
