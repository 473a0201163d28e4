"""Who holds a port the stack needs, and what to tell the user to do about it.

`modgate up` refuses to start on a busy port; the message names the process listening there
(pid, command line), whether it belongs to a modgate stack (its marker, :mod:`.markers`) and
whether that stack's supervisor is still alive, and gives the exact command that clears it.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import psutil

from modgate.tools.stack.markers import MarkedProcess, read_marker

# Command-line fragments of the stack's own processes: a holder without a marker that matches
# one is a leftover of a `modgate up` from before markers existed.
_STACK_COMMANDS = (
    "_bentoml_impl.worker.service services.",
    "bentoml serve services.",
    "-m gateway",
    "-m modgate.tools.tracestore",
)


@dataclass(frozen=True)
class PortHolder:
    pid: int | None  # None: a process this user cannot see
    command: str
    marker: MarkedProcess | None


def _listens_on(conn: psutil._common.sconn, port: int, host: str) -> bool:
    if conn.status != psutil.CONN_LISTEN or not conn.laddr or conn.laddr.port != port:
        return False
    return conn.laddr.ip in (host, "0.0.0.0", "::", f"::ffff:{host}")


def port_holders(port: int, host: str) -> list[PortHolder]:
    """The processes listening on host:port (one unknown holder when none can be seen)."""
    try:
        connections = psutil.net_connections(kind="inet")
    except (psutil.AccessDenied, OSError):
        connections = []
    pids = sorted({c.pid for c in connections if c.pid and _listens_on(c, port, host)})
    holders = []
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            process = psutil.Process(pid)
            holders.append(PortHolder(pid, " ".join(process.cmdline())[:160], read_marker(process)))
    return holders or [PortHolder(None, "", None)]


def _other_port(name: str) -> str:
    return f"or run on another port: --{name}-port N (0 = any free)"


def describe_holder(name: str, port: int, holder: PortHolder) -> str:
    """One sentence: who holds `name`'s port and the command that clears it."""
    where = f"{name} port {port}"
    if holder.pid is None:
        return (
            f"{where} is in use by a process this user cannot see (another user's?): stop it, "
            + _other_port(name)
        )
    who = f"{where} is held by pid {holder.pid} ({holder.command})"
    marker = holder.marker
    if marker is not None and marker.orphaned:
        return (
            f"{who}, left behind by modgate stack {marker.stack_id} (its `modgate up`, pid "
            f"{marker.supervisor_pid}, is gone). Clear it with `modgate down` (stops every process such "
            f"a stack left) or `kill {holder.pid}`"
        )
    if marker is not None:
        home = f"MODGATE_HOME={marker.home} " if marker.home else ""
        return (
            f"{who}, part of a running modgate stack (supervisor pid {marker.supervisor_pid}). Stop it "
            f"with Ctrl-C in its terminal, `kill -INT {marker.supervisor_pid}` or `{home}modgate down`, "
            + _other_port(name)
        )
    if any(fragment in holder.command for fragment in _STACK_COMMANDS):
        return (
            f"{who}, which looks like a leftover of an older `modgate up` (it carries no stack marker). "
            f"Clear it with `kill {holder.pid}`"
        )
    return f"{who}, not a modgate process. Stop it (`kill {holder.pid}`) if it is yours, " + _other_port(name)
