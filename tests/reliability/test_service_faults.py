"""SIGKILL each model service's whole process tree in turn under load; the stack's supervisor
(what `modgate up` runs) starts it again (real processes).

Every request gets an answer inside its deadline: a verdict (degraded while a service is
down: its modality FAILED or TIMED_OUT, decided as the policy's failure section says), or a
retryable status (RESOURCE_EXHAUSTED with retry-after-ms, UNAVAILABLE). No call hangs.
Recovery is measured per service: from the supervisor's restart to the first answer in which
its modality ran again."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import asdict
from pathlib import Path

import pytest

from modgate.policy import load_policies
from modgate.tools.faults import (
    FaultRecord,
    SupervisedRestarts,
    inject_faults,
    policy_problem,
    recovery,
    served_by,
)
from modgate.tools.load import RETRYABLE, Outcome, Work, run_load, summarize
from modgate.tools.stack import Stack

CLIENTS = 8
DEADLINE_S = 10.0
SERVICES = ("speech", "vision", "text")


def _explain(unanswered: list[Outcome], faults: list[FaultRecord], stack: Stack) -> str:
    """What the gateway logged for calls that got no usable answer, and when the faults were."""
    log = stack.processes["gateway"].log_path.read_text(errors="replace").splitlines()
    lines = [
        f"{f.service}: killed {f.killed_at:.1f} restarted {f.restarted_at:.1f} ready {f.ready_at:.1f}"
        for f in faults
    ]
    for outcome in unanswered[:8]:
        lines.append(
            f"{outcome.request_id} {outcome.kind} {outcome.status} {outcome.started:.1f}->{outcome.ended:.1f}"
        )
        lines += [f"    {line}" for line in log if outcome.request_id + " " in line][:6]
    return "\n".join(lines)


@pytest.mark.timeout(900)
def test_killing_each_model_service_under_load(stack: Stack, works: list[Work], tmp_path: Path) -> None:
    faults: list[FaultRecord] = []
    done = threading.Event()
    # The supervisor restarts each killed tree after its backoff (1 s); "ready" is when it saw
    # the new process healthy (its own process, not whatever might hold the port).
    restarts = SupervisedRestarts(stack)
    served_at: dict[str, list[float]] = {s: [] for s in SERVICES}  # when each call a service answered began

    def seen(outcome: Outcome) -> None:
        for service in SERVICES:
            if served_by(outcome, service):
                served_at[service].append(outcome.started)

    def faults_then_settle() -> None:
        try:
            faults.extend(
                inject_faults(
                    restarts.kill,
                    restarts.start,
                    restarts.ready,
                    SERVICES,
                    down_s=0.0,
                    gap_s=3.0,
                    # Restarts overlap (the next service is killed while the previous one loads
                    # its model): one at a time takes minutes on two cores. bench.load does them
                    # one at a time.
                    wait_each=False,
                    ready_timeout_s=400.0,
                )
            )
            # The load keeps running until every restarted service answered again (its recovery is
            # the measured figure; right after a restart on a starved machine the gateway's
            # breaker may still be probing it), 10 s at least, 120 s at most.
            settle_until = time.monotonic() + 120.0
            time.sleep(10.0)
            while time.monotonic() < settle_until and not all(
                any(f.restarted_at <= at for at in served_at[f.service]) for f in faults
            ):
                time.sleep(0.5)
        finally:
            done.set()

    injector = threading.Thread(target=faults_then_settle, daemon=True)
    started = time.monotonic()
    injector.start()
    outcomes = run_load(
        stack.gateway_target,
        works,
        clients=CLIENTS,
        duration_s=600.0,
        deadline_s=DEADLINE_S,
        until=done,
        on_outcome=seen,
    )
    injector.join(timeout=60)
    elapsed = time.monotonic() - started
    recovery(faults, outcomes)
    summary = summarize(outcomes, elapsed)
    figures = {
        f.service: {
            "restart_to_ready_s": round(f.restart_to_ready_s, 1),
            "recovery_s": None if f.recovery_s is None else round(f.recovery_s, 1),
        }
        for f in faults
    }
    print(f"\nfaults under load ({elapsed:.0f} s): {summary}\nrecovery: {figures}")
    (tmp_path / "outcomes.json").write_text(
        json.dumps(
            {
                "faults": [{**asdict(f), "recovery_s": f.recovery_s} for f in faults],
                "outcomes": [asdict(o) for o in outcomes],
            },
            indent=1,
        )
    )

    assert [f.service for f in faults] == list(SERVICES)
    assert all(f.ready_at for f in faults), figures
    assert summary["hung"] == 0
    unanswered = [o for o in outcomes if o.status != "OK" and o.status not in RETRYABLE]
    assert not unanswered, _explain(unanswered, faults, stack)
    # While a service was down its modality failed and the verdict said so.
    policy = load_policies()["default"]
    for fault in faults:
        modality = {"speech": "AUDIO", "vision": "VISUAL", "text": "TEXT"}[fault.service]
        down = [
            o for o in outcomes if o.status == "OK" and fault.killed_at + 0.5 < o.started < fault.ready_at
        ]
        assert any(o.modalities.get(modality) in ("FAILED", "TIMED_OUT") for o in down), fault.service
        problems = [p for o in down if (p := policy_problem(o, fault.service, policy))]
        assert not problems, problems[:3]
    for fault in faults:
        modality = {"speech": "AUDIO", "vision": "VISUAL", "text": "TEXT"}[fault.service]
        during = [
            o
            for o in outcomes
            if o.status == "OK" and fault.killed_at + 0.5 < o.started and o.ended < fault.restarted_at
        ]
        if any(o.modalities.get(modality, "SKIPPED") != "SKIPPED" for o in during):
            assert any(o.degraded and o.modalities.get(modality) == "FAILED" for o in during), fault.service
    # Every service came back and answered again (how long it took is the measured figure:
    # model loading on a starved machine dominates it).
    for fault in faults:
        assert fault.recovery_s is not None, f"{fault.service} never served again after its restart"
    # Once every service is ready again, verdicts come back with nothing failed.
    all_ready = max(f.ready_at for f in faults)
    healthy = [
        o
        for o in outcomes
        if o.status == "OK"
        and o.started > all_ready
        and o.modalities
        and not {"FAILED", "TIMED_OUT"} & set(o.modalities.values())
    ]
    assert healthy, summary
