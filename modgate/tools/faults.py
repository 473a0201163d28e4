"""Faults under load: SIGKILL each model service in turn, start it again, measure recovery.

Recovery is from a service's restart to the first answer in which its modality ran again.
Used by `python -m bench.load --kill-services` and the reliability tests.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from modgate.ports import DEFAULT_PORTS
from modgate.tools.load import Outcome
from modgate.tools.stack import port_in_use

# The modality each service's answer shows up in (speech feeds AUDIO; text feeds TEXT and the
# transcript part of AUDIO).
SERVICE_MODALITY = {"speech": "AUDIO", "vision": "VISUAL", "text": "TEXT"}
# A modality state that means "the service answered" (vision runs uncalibrated offline).
SERVED = {"OK", "UNCALIBRATED"}


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
