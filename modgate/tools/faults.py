"""Faults under load: SIGKILL each model service in turn, let it restart, measure recovery.

The kills are what a crash looks like from outside: the whole process tree (:func:`kill_tree`),
only the process group (:func:`kill_group`: BentoML's workers, in sessions of their own,
survive it) or only the workers (:func:`kill_workers`). With a supervised stack
(:class:`SupervisedRestarts`) the stack's supervisor restarts what died, as under `modgate up`;
otherwise the caller starts it again. Recovery is from a service's restart to the first answer
in which its modality ran again; :func:`policy_problem` checks that an answer given while a
service was down degraded as the policy's failure section says.
Used by `python -m bench.load --kill-services` and the reliability tests.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

from modgate.policy import Policy
from modgate.ports import DEFAULT_PORTS
from modgate.tools.load import Outcome
from modgate.tools.stack import ManagedProcess, Stack, port_in_use

# The modality each service's answer shows up in (speech feeds AUDIO; text feeds TEXT and the
# transcript part of AUDIO).
SERVICE_MODALITY = {"speech": "AUDIO", "vision": "VISUAL", "text": "TEXT"}
# A modality state that means "the service answered" (vision runs uncalibrated offline).
SERVED = {"OK", "UNCALIBRATED"}
# The states a modality whose service is down ends in, and the policy rule each one follows.
DOWN_STATES = {"FAILED": "on_failed", "TIMED_OUT": "on_timeout"}
DECISION_ORDER = ("ALLOW", "REVIEW", "BLOCK")


def kill_group(proc: ManagedProcess) -> list[psutil.Process]:
    """SIGKILL the process group (what `kill -9 -PGID` does); returns the processes that
    were outside it and survive (BentoML's workers)."""
    outside = proc.track()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    return [p for p in outside if _pgid(p) != proc.pid]


def kill_workers(proc: ManagedProcess) -> list[psutil.Process]:
    """SIGKILL every descendant of the leader, not the leader (a worker crash); returns them."""
    workers = proc.track()
    for worker in workers:
        with contextlib.suppress(psutil.NoSuchProcess):
            worker.kill()
    return workers


def kill_tree(proc: ManagedProcess) -> list[psutil.Process]:
    """SIGKILL the whole process tree at once (group and workers, as the OOM killer of a
    container would); returns every process killed."""
    tree = [*proc.members()]
    proc.track()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    for member in tree:
        with contextlib.suppress(psutil.NoSuchProcess):
            member.kill()
    return tree


def _pgid(process: psutil.Process) -> int | None:
    try:
        return os.getpgid(process.pid)
    except ProcessLookupError:
        return None


class SupervisedRestarts:
    """inject_faults hooks for a stack whose supervisor restarts what dies (`modgate up`,
    :meth:`Stack.supervise_in_background`): kill the whole tree; "start" waits until the
    supervisor has started it again; ready once the supervisor saw it healthy again."""

    def __init__(
        self, stack: Stack, kill: Callable[[ManagedProcess], list[psutil.Process]] = kill_tree
    ) -> None:
        if stack.supervisor is None:
            raise ValueError("the stack is not supervised: call supervise_in_background() first")
        self.stack, self._kill = stack, kill
        self.supervisor = stack.supervisor
        self._before: dict[str, int] = {}

    def kill(self, service: str) -> list[psutil.Process]:
        """Kill `service` (see the kill function given); returns what the kill function does."""
        self._before[service] = self.supervisor.watches[service].restarts
        return self._kill(self.stack.processes[service])

    def start(self, service: str, timeout_s: float = 120.0) -> None:
        deadline = time.monotonic() + timeout_s
        while self.supervisor.watches[service].restarts <= self._before[service]:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the supervisor did not restart {service} within {timeout_s:.0f} s")
            time.sleep(0.1)

    def ready(self, service: str) -> bool:
        watch = self.supervisor.watches[service]
        return watch.restarts > self._before.get(service, -1) and watch.phase == "ready"


def policy_problem(outcome: Outcome, service: str, policy: Policy) -> str | None:
    """Why a verdict given while `service` was down did not degrade as `policy` says (None: it
    did, or the modality was not involved)."""
    modality = SERVICE_MODALITY[service]
    state = outcome.modalities.get(modality)
    if outcome.status != "OK" or state not in DOWN_STATES:
        return None
    action = getattr(policy.failure, DOWN_STATES[state]).value
    rule = f"failure.{DOWN_STATES[state]}={action}"
    if not outcome.degraded:
        return f"{outcome.request_id}: {modality} {state} but the verdict is not degraded"
    if not any(f"{modality} {state}" in r and rule in r for r in outcome.verdict_reasons):
        found = "; ".join(outcome.verdict_reasons)[:400]
        return f"{outcome.request_id}: no reason names {modality} {state} and {rule}: {found}"
    if action == "review" and DECISION_ORDER.index(outcome.decision) < DECISION_ORDER.index("REVIEW"):
        return f"{outcome.request_id}: {modality} {state} with {rule} but the decision is {outcome.decision}"
    return None


@dataclass
class FaultRecord:
    service: str
    killed_at: float
    restarted_at: float = 0.0
    ready_at: float = 0.0
    first_served_at: float | None = None

    @property
    def restart_to_ready_s(self) -> float:
        return self.ready_at - self.restarted_at

    @property
    def recovery_s(self) -> float | None:
        """Restart -> first answer whose modality ran again (None: never, in the run)."""
        return None if self.first_served_at is None else self.first_served_at - self.restarted_at


def served_by(outcome: Outcome, service: str) -> bool:
    """Whether `service` answered for this verdict."""
    if outcome.status != "OK":
        return False
    modality = SERVICE_MODALITY[service]
    if outcome.modalities.get(modality) in SERVED:
        return True
    # AUDIO also needs text to score the transcript: speech answered if only that step failed.
    return service == "speech" and outcome.reasons.get("AUDIO", "").startswith("transcribed")


def recovery(faults: Sequence[FaultRecord], outcomes: Sequence[Outcome]) -> None:
    """Fill first_served_at: the first call begun after the restart that the service answered."""
    for fault in faults:
        served = [
            o.ended for o in outcomes if o.started >= fault.restarted_at and served_by(o, fault.service)
        ]
        fault.first_served_at = min(served) if served else None


def inject_faults(
    kill: Callable[[str], None],
    start: Callable[[str], None],
    ready: Callable[[str], bool],
    services: Sequence[str],
    *,
    down_s: float,
    gap_s: float,
    wait_each: bool = True,
    ready_timeout_s: float = 300.0,
) -> list[FaultRecord]:
    """SIGKILL each service in turn, leave it down `down_s`, start it again.

    wait_each: wait for a restarted service to be ready before killing the next (one fault at a
    time); otherwise the next is killed `gap_s` after the previous restart, and the restarts
    load their models side by side (shorter, on a small machine). Returns once every service
    is ready again (or ready_timeout_s after its restart: then ready_at stays 0)."""
    records: list[FaultRecord] = []

    def await_ready(pending: list[FaultRecord]) -> None:
        # All pending services are polled together, so each ready_at is when it became ready.
        while pending:
            for record in list(pending):
                if ready(record.service):
                    record.ready_at = time.monotonic()
                    pending.remove(record)
                elif time.monotonic() > record.restarted_at + ready_timeout_s:
                    pending.remove(record)
            time.sleep(0.2)

    for service in services:
        time.sleep(gap_s)
        record = FaultRecord(service, killed_at=time.monotonic())
        kill(service)
        time.sleep(down_s)
        record.restarted_at = time.monotonic()
        start(service)
        records.append(record)
        if wait_each:
            await_ready([record])
    await_ready([r for r in records if not r.ready_at])
    return records


def restartable_ports() -> dict[str, int]:
    """Free ports for a local stack, below the kernel's ephemeral range: a killed service's port
    must still be free when it restarts, and any process binding port 0 could take an ephemeral
    one meanwhile."""
    try:
        ephemeral_low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        ephemeral_low = 32768
    rng = random.Random()
    chosen: dict[str, int] = {}
    names = list(DEFAULT_PORTS)
    while len(chosen) < len(names):
        port = rng.randrange(max(ephemeral_low - 12000, 1024), ephemeral_low)
        if port not in chosen.values() and not port_in_use(port):
            chosen[names[len(chosen)]] = port
    return chosen
