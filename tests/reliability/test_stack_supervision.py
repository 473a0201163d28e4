"""A crashed service heals under the stack's supervisor, as under `modgate up` (issue 21, item 3).

Light load runs through the gateway while one service is killed the way it crashed for QA:

- speech: SIGKILL of its process group. BentoML's worker lives in a session of its own and
  survives it, holding the port; the supervisor must find it (stack marker), kill it, and start
  speech again; meanwhile AUDIO fails and verdicts degrade as the policy's failure section says.
- text: SIGKILL of only its BentoML worker. BentoML's arbiter starts another; the supervisor
  reports it; meanwhile TEXT fails (per policy), then serves again.

The whole-tree kill of every service in turn is tests/reliability/test_service_faults.py; Ctrl-C
of a real `modgate up` is tests/e2e/test_e2e_stack.py.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import psutil
import pytest

from modgate.policy import load_policies
from modgate.tools.faults import SupervisedRestarts, kill_group, kill_workers, policy_problem, served_by
from modgate.tools.load import RETRYABLE, Outcome, Work, run_load, summarize
from modgate.tools.stack import Stack, read_state
from modgate.tools.stack.markers import alive, read_marker

CLIENTS = 3
DEADLINE_S = 10.0
POLICY = load_policies()["default"]


@dataclass
class Fault:
    killed_at: float = 0.0
    back_at: float = 0.0  # restarted (speech) or new worker started (text)
    serving_at: float = 0.0
    killed: list[psutil.Process] = field(default_factory=list)


def _under_load(
    stack: Stack, works: list[Work], service: str, inject: Callable[[Fault], None]
) -> tuple[Fault, list[Outcome]]:
    """Run `inject` (which fills a Fault) while CLIENTS callers send requests; keep the load on
    until `service` answered a call begun after it was serving again (8 s at least, 120 s at
    most: right after a restart on a starved machine its first calls may still time out), so
    the recovery shows."""
    fault, done, errors = Fault(), threading.Event(), []
    served_at: list[float] = []  # when each call `service` answered began

    def seen(outcome: Outcome) -> None:
        if served_by(outcome, service):
            served_at.append(outcome.started)

    def run() -> None:
        try:
            time.sleep(3.0)  # load first
            inject(fault)
            settle_until = time.monotonic() + 120.0
            time.sleep(8.0)
            while time.monotonic() < settle_until and not any(at > fault.serving_at for at in served_at):
                time.sleep(0.5)
        except BaseException as exc:  # surfaced by the test, not lost in the thread
            errors.append(exc)
        finally:
            done.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    outcomes = run_load(
        stack.gateway_target,
        works,
        clients=CLIENTS,
        duration_s=600,
        deadline_s=DEADLINE_S,
        until=done,
        on_outcome=seen,
    )
    thread.join(timeout=30)
    if errors:
        raise errors[0]
    return fault, outcomes


def _wait(condition: Callable[[], bool], timeout_s: float, what: str) -> float:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not {what} after {timeout_s:.0f} s")
        time.sleep(0.2)
    return time.monotonic()


def _check_degraded_then_recovered(
    service: str, modality: str, fault: Fault, outcomes: list[Outcome]
) -> None:
    summary = summarize(outcomes, outcomes[-1].ended - outcomes[0].started)
    back, serving = fault.back_at - fault.killed_at, fault.serving_at - fault.killed_at
    print(f"\n{service}: back {back:.1f} s and serving {serving:.1f} s after the kill; {summary}")
    assert summary["hung"] == 0
    unanswered = [o for o in outcomes if o.status != "OK" and o.status not in RETRYABLE]
    assert not unanswered, [(o.request_id, o.status, o.details) for o in unanswered[:5]]
    down = [
        o
        for o in outcomes
        if o.status == "OK" and fault.killed_at + 0.5 < o.started and o.ended < fault.serving_at
    ]
    failed = [o for o in down if o.modalities.get(modality) in ("FAILED", "TIMED_OUT")]
    assert failed, (
        f"no verdict showed {modality} failing while {service} was down: {summary['modality_states']}"
    )
    problems = [p for o in down if (p := policy_problem(o, service, POLICY))]
    assert not problems, problems[:3]
    recovered = [o for o in outcomes if o.started > fault.serving_at and served_by(o, service)]
    assert recovered, f"{service} never answered again: {summary['modality_states']}"


@pytest.mark.timeout(600)
def test_speech_whose_process_group_was_killed_is_restarted_and_its_orphan_swept(
    stack: Stack, works: list[Work]
) -> None:
    restarts = SupervisedRestarts(stack, kill=kill_group)
    speech = stack.processes["speech"]
    old_leader = speech.pid

    def inject(fault: Fault) -> None:
        fault.killed_at = time.monotonic()
        fault.killed = restarts.kill("speech")  # the processes outside the group, which survive it
        restarts.start("speech")
        fault.back_at = time.monotonic()
        fault.serving_at = _wait(lambda: restarts.ready("speech"), 300, "serving again")

    fault, outcomes = _under_load(stack, works, "speech", inject)
    # The worker outlived its group (BentoML's sessions) and was swept before the restart.
    assert fault.killed, "speech's group held every process: nothing was left to orphan"
    assert alive(fault.killed) == []
    assert speech.pid != old_leader and speech.spec.ready()
    events = [(e.kind, e.detail) for e in restarts.supervisor.events if e.process == "speech"]
    kinds = [k for k, _ in events]
    assert kinds[-3:] == ["died", "restarting", "ready"], events
    # The backoff grows when speech failed less than healthy_after_s before (an earlier test's
    # fault on the same stack): the count is history, the kill and the restart are this test's.
    assert re.match(r"killed by SIGKILL; restarting in \d+ s \(failure \d+ of 5", events[-3][1]), events[-3]
    state = read_state(stack.state_path)
    assert state is not None
    assert state["processes"]["speech"]["status"] == "ready"
    assert state["processes"]["speech"]["restarts"] >= 1
    assert state["processes"]["speech"]["pid"] == speech.pid
    assert any(e["process"] == "speech" and e["kind"] == "ready" for e in state["events"])
    _check_degraded_then_recovered("speech", "AUDIO", fault, outcomes)


@pytest.mark.timeout(600)
def test_text_whose_bentoml_worker_was_killed_is_respawned_reported_and_serves_again(
    stack: Stack, works: list[Work]
) -> None:
    text = stack.processes["text"]
    supervisor = stack.supervisor
    assert supervisor is not None
    leader, restarts_before = text.pid, supervisor.watches["text"].restarts
    seen_before = len(supervisor.events)

    def reported(kind: str) -> bool:
        return any(e.process == "text" and e.kind == kind for e in supervisor.events[seen_before:])

    def inject(fault: Fault) -> None:
        fault.killed_at = time.monotonic()
        fault.killed = kill_workers(text)
        fault.back_at = _wait(lambda: reported("worker_started"), 120, "a new worker reported")
        fault.serving_at = _wait(text.spec.ready, 300, "serving again")

    fault, outcomes = _under_load(stack, works, "text", inject)
    assert fault.killed and alive(fault.killed) == []
    assert reported("worker_exited")
    assert text.pid == leader and supervisor.watches["text"].restarts == restarts_before  # BentoML's respawn
    workers = text.members()[1:]
    assert workers and all((m := read_marker(w)) and m.stack_id == stack.marker.stack_id for w in workers)
    state = read_state(stack.state_path)
    assert state is not None and state["processes"]["text"]["worker_exits"] >= 1
    _check_degraded_then_recovered("text", "TEXT", fault, outcomes)
