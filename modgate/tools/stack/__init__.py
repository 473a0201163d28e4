"""The local stack (`modgate up`): child processes, health-gated, stopped cleanly.

``process`` (one child in its own process group), ``health`` (readiness checks), ``specs``
(what runs, with which environment and threads), ``stack`` (:class:`Stack`: start in order,
wait, stop, state file), ``up`` (the command).
"""

from __future__ import annotations

from modgate.tools.stack.health import grpc_serving, http_ready
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
from modgate.tools.stack.stack import STATE_FILE, Stack, StackError, StackInterrupted

__all__ = [
    "STATE_FILE",
    "ManagedProcess",
    "ProcessSpec",
    "Stack",
    "StackConfig",
    "StackError",
    "StackInterrupted",
    "free_port",
    "gateway_spec",
    "grpc_serving",
    "http_ready",
    "modgate_home",
    "port_in_use",
    "service_spec",
    "thread_plan",
    "trace_store_spec",
    "usable_cores",
]
