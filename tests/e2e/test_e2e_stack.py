"""`modgate up` as a user runs it: health-gated start, a working stack that heals when its
processes are killed (issue 21, item 3), and nothing left after SIGINT, checked by PID, by
stack marker and by port."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import psutil
import pytest

from modgate.client import ModerationClient, ModerationError
from modgate.policy import load_policies
from modgate.tools.faults import policy_problem, served_by
from modgate.tools.load import RETRYABLE, default_works, run_load, summarize
from modgate.tools.samples import Sample
from modgate.tools.stack.markers import alive
from modgate.v1 import moderation_pb2 as pb
from tests.e2e.up_process import UpProcess

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

# The gateway tries a restarted service again after 1 s (default 30 s would hide the recovery).
# 500 ms of each deadline kept back to send a degraded verdict in time on a starved machine.
GATEWAY_ENV = {
    "MODGATE_GATEWAY_BREAKER_RESET_TIMEOUT_S": "1.0",
    "MODGATE_GATEWAY_BREAKER_FAILURE_THRESHOLD": "3",
    "MODGATE_GATEWAY_DEADLINE_MARGIN_MS": "500",
}
POLICY = load_policies()["default"]
DOWN = {"FAILED": "on_failed", "TIMED_OUT": "on_timeout"}


@pytest.fixture
def up(tmp_path: Path) -> Iterator[UpProcess]:
    process = UpProcess(tmp_path, GATEWAY_ENV)
    try:
        yield process
    finally:
        process.cleanup()


def _state_of(verdict: pb.Verdict, modality: int) -> str:
    state = next(m.state for m in verdict.modalities if m.modality == modality)
    return pb.ModalityState.Name(state).removeprefix("MODALITY_STATE_")


def _moderate(up: UpProcess, sample: Sample | None, timeout_s: float = 10.0) -> pb.Verdict | None:
    try:
        with ModerationClient(up.state()["gateway"], timeout_s=timeout_s) as client:
            if sample is None:
                return client.moderate_text("Double your bitcoin in 24 hours")
            return client.moderate_file(sample.path)
    except ModerationError as exc:
        assert exc.code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED), exc
        return None


def _degraded_per_policy(verdict: pb.Verdict, name: str, state: str) -> None:
    """The failure section of the policy decided: REVIEW at least, and the reason says so."""
    rule = f"failure.{DOWN[state]}={getattr(POLICY.failure, DOWN[state]).value}"
    assert verdict.degraded
    assert verdict.decision in (pb.DECISION_REVIEW, pb.DECISION_BLOCK)
    assert any(f"{name} {state}" in r and rule in r for r in verdict.reasons), list(verdict.reasons)


def _until_verdict(
    up: UpProcess, sample: Sample | None, modality: int, states: set[str], timeout_s: float
) -> pb.Verdict:
    """Moderate until the verdict shows `modality` in one of `states`."""
    until, seen = time.monotonic() + timeout_s, []
    while time.monotonic() < until:
        verdict = _moderate(up, sample)
        if verdict is not None:
            seen.append(_state_of(verdict, modality))
            if seen[-1] in states:
                return verdict
        time.sleep(0.3)
    raise AssertionError(f"never {states} in {timeout_s:.0f} s: {seen}\n{up.log()[-3000:]}")


def _kill_speech_group(up: UpProcess, benign: Sample) -> float:
    """SIGKILL speech's process group: its BentoML worker (own session) survives, holding the port,
    and must be swept before speech is started again. Returns restart-to-serving seconds."""
    leader = up.members("speech")[0]
    workers = [p for p in up.members("speech") if os.getpgid(p.pid) != leader.pid]
    assert workers, "speech's worker is in its group: the orphan case cannot happen"
    killed_at = time.monotonic()
    os.killpg(leader.pid, signal.SIGKILL)
    degraded = _until_verdict(up, benign, pb.MODALITY_AUDIO, {"FAILED", "TIMED_OUT"}, 60)
    _degraded_per_policy(degraded, "AUDIO", _state_of(degraded, pb.MODALITY_AUDIO))
    state = up.wait(
        lambda s: s["processes"]["speech"]["restarts"] == 1 and s["processes"]["speech"]["status"] == "ready",
        300,
        "speech restarted and ready",
    )
    serving = time.monotonic() - killed_at
    assert state["processes"]["speech"]["pid"] != leader.pid
    assert alive(workers) == [], "the orphaned worker outlived the restart"
    log = up.log()
    assert "speech: killed by SIGKILL; restarting in 1 s (failure 1 of 5 in a row)" in log
    assert "speech: serving again" in log
    _until_verdict(up, benign, pb.MODALITY_AUDIO, {"OK"}, 120)
    return serving


def _kill_text_worker(up: UpProcess) -> float:
    """SIGKILL only text's BentoML worker: BentoML starts another; reported, then serving again."""
    leader, *workers = up.members("text")
    assert workers
    killed_at = time.monotonic()
    for worker in workers:
        worker.kill()
    degraded = _until_verdict(up, None, pb.MODALITY_TEXT, {"FAILED", "TIMED_OUT"}, 60)
    _degraded_per_policy(degraded, "TEXT", _state_of(degraded, pb.MODALITY_TEXT))
    up.wait(lambda s: s["processes"]["text"]["worker_exits"] >= 1, 60, "the worker exit reported")
    recovered = _until_verdict(up, None, pb.MODALITY_TEXT, {"OK"}, 180)
    serving = time.monotonic() - killed_at
    assert recovered.decision == pb.DECISION_BLOCK
    assert up.state()["processes"]["text"]["pid"] == leader.pid  # BentoML respawned its worker in place
    assert f"text: worker pid {workers[0].pid} exited" in up.log()
    return serving


def test_modgate_up_heals_killed_services_and_leaves_nothing_after_sigint(
    up: UpProcess, benign: Sample
) -> None:
    state = up.wait(lambda s: s["status"] == "ready", 400, "ready")
    # `modgate up` runs the review console too (--no-console leaves it out).
    assert set(state["processes"]) == {"traces", "speech", "vision", "text", "gateway", "console"}
    assert state["supervisor_pid"] == up.popen.pid

    verdict = _moderate(up, None, timeout_s=30)
    assert verdict is not None and verdict.decision == pb.DECISION_BLOCK

    # Every process of the stack, BentoML's workers included, each child in its own group.
    descendants = up.record()
    leaders = {info["pid"] for info in state["processes"].values()}
    assert leaders <= {p.pid for p in descendants}
    assert len(descendants) > len(leaders)  # bentoml serve runs worker processes
    assert all(os.getpgid(pid) == pid for pid in leaders)

    speech_s = _kill_speech_group(up, benign)
    text_s = _kill_text_worker(up)
    up.record()

    code, before, ports = up.stop_with_sigint()
    print(
        f"\nspeech serving {speech_s:.1f} s after its group was killed; "
        f"text {text_s:.1f} s after its worker; "
        f"{before} processes before SIGINT ({len(up.seen)} seen in all), 0 after; ports {ports} free"
    )
    assert code == 0
    assert not up.state_path.exists()
    assert "SIGINT: stopping" in up.log()


def _kill_tree(up: UpProcess, name: str) -> None:
    """SIGKILL the process's whole tree at once (group and workers in other sessions)."""
    members = up.members(name)
    os.killpg(members[0].pid, signal.SIGKILL)
    for member in members:
        with contextlib.suppress(psutil.NoSuchProcess):
            member.kill()


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_modgate_up_restarts_every_killed_process_tree_under_load(up: UpProcess, tmp_path: Path) -> None:
    """Each process of the stack (vision's restart takes minutes here) killed in turn under load."""
    up.wait(lambda s: s["status"] == "ready", 400, "ready")
    works = default_works(tmp_path / "media")
    windows: dict[str, tuple[float, float]] = {}
    done = threading.Event()

    def faults() -> None:
        try:
            for name in ("traces", "speech", "vision", "text", "gateway"):
                time.sleep(5.0)
                restarts = up.state()["processes"][name]["restarts"]
                killed_at = time.monotonic()
                _kill_tree(up, name)
                up.wait(
                    lambda s, n=name, r=restarts: (
                        s["processes"][n]["restarts"] == r + 1 and s["processes"][n]["status"] == "ready"
                    ),
                    400,
                    f"{name} ready again",
                )
                windows[name] = (killed_at, time.monotonic())
            time.sleep(10.0)
        finally:
            done.set()

    injector = threading.Thread(target=faults, daemon=True)
    injector.start()
    outcomes = run_load(up.state()["gateway"], works, clients=2, duration_s=1500, deadline_s=10.0, until=done)
    injector.join(timeout=60)
    print({n: round(b - a, 1) for n, (a, b) in windows.items()}, summarize(outcomes, 1.0)["statuses"])
    assert set(windows) == {"traces", "speech", "vision", "text", "gateway"}
    assert not [o for o in outcomes if o.hung]
    assert not [o for o in outcomes if o.status != "OK" and o.status not in RETRYABLE]
    for service in ("speech", "vision", "text"):
        start, end = windows[service]
        down = [o for o in outcomes if start + 0.5 < o.started < end]
        assert not [p for o in down if (p := policy_problem(o, service, POLICY))]
        assert [o for o in outcomes if o.started > end and served_by(o, service)], service
    code, _seen, _ports = up.stop_with_sigint()
    assert code == 0
