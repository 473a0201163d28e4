"""Supervision of the local stack with real (tiny) processes shaped like BentoML's: restart with
backoff, orphans swept by marker, giving up, worker exits reported, stale ports explained.

The model-service versions (speech, text, vision under `modgate up`) are in
tests/reliability/test_stack_supervision.py and tests/e2e/test_e2e_stack.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from modgate.tools.stack import (
    ManagedProcess,
    ProcessSpec,
    RestartPolicy,
    Stack,
    StackConfig,
    StackError,
    StackMarker,
    Supervisor,
    free_port,
    http_ready,
    marked_processes,
    port_in_use,
    read_state,
)
from modgate.tools.stack.holders import describe_holder, port_holders
from modgate.tools.stack.markers import PROCESS_VAR, STACK_ID_VAR, SUPERVISOR_VAR, alive

FAKE_SERVICE = Path(__file__).with_name("fake_service.py")
FAST = RestartPolicy(first_delay_s=0.2, max_delay_s=0.8, healthy_after_s=60.0, max_rapid_failures=3)


def _until(
    condition: Callable[[], bool], timeout_s: float, what: str, tick: Callable[[], None] = lambda: None
) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"not {what} after {timeout_s} s"
        tick()
        time.sleep(0.05)


@pytest.fixture
def marker() -> StackMarker:
    return StackMarker.new()


@pytest.fixture
def fake_service(tmp_path: Path, marker: StackMarker) -> Iterator[ManagedProcess]:
    port = free_port()
    spec = ProcessSpec(
        "speech",
        [sys.executable, str(FAKE_SERVICE), str(port)],
        port,
        http_ready(f"http://127.0.0.1:{port}/readyz"),
    )
    proc = ManagedProcess(spec, tmp_path, marker)
    proc.start()
    try:
        _until(spec.ready, 30, "ready")
        yield proc
    finally:
        proc.stop(grace_s=2.0)
        assert marked_processes(marker.stack_id) == []


def _worker(proc: ManagedProcess) -> psutil.Process:
    _until(lambda: len(proc.members()) == 2, 10, "one worker")
    worker = proc.members()[1]
    assert os.getsid(worker.pid) == worker.pid != proc.pid  # its own session, like BentoML's
    return worker


def test_restart_policy_backs_off_exponentially_up_to_a_bound() -> None:
    policy = RestartPolicy()
    assert [policy.delay(n) for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]


def test_killed_process_group_is_restarted_and_its_orphan_swept(fake_service: ManagedProcess) -> None:
    said: list[str] = []
    supervisor = Supervisor({"speech": fake_service}, FAST, said.append)
    old_leader, old_worker = fake_service.pid, _worker(fake_service)

    os.killpg(old_leader, signal.SIGKILL)  # the whole group: the worker, in its own session, survives
    time.sleep(0.3)
    assert old_worker.is_running() and port_in_use(fake_service.spec.port)  # the orphan holds the port

    watch = supervisor.watches["speech"]
    _until(lambda: watch.phase == "ready" and watch.restarts == 1, 30, "restarted", supervisor.tick)
    assert alive([old_worker]) == []  # swept (a zombie until PID 1 reaps it holds nothing)
    assert fake_service.pid != old_leader and fake_service.spec.ready()
    # worker_exited may come first: a tick saw the kill take the workers before the leader.
    kinds = [e.kind for e in supervisor.events if not e.kind.startswith("worker_")]
    assert kinds == ["died", "restarting", "ready"], supervisor.events
    assert "killed by SIGKILL; restarting in 0 s (failure 1 of 3 in a row)" in said[0]
    assert supervisor.state()["speech"] == {
        "status": "ready",
        "restarts": 1,
        "failures_in_a_row": 1,
        "last_exit": "killed by SIGKILL",
        "worker_exits": 0,
    }


def test_a_killed_worker_is_reported_and_left_to_its_parent(fake_service: ManagedProcess) -> None:
    said: list[str] = []
    supervisor = Supervisor({"speech": fake_service}, FAST, said.append)
    worker = _worker(fake_service)
    worker.kill()
    watch = supervisor.watches["speech"]

    def tick() -> None:
        watch.last_check = 0.0  # check every tick, not every 2 s
        supervisor.tick()

    kinds = lambda: [e.kind for e in supervisor.events]  # noqa: E731
    _until(lambda: kinds() == ["worker_exited", "worker_started"], 20, "reported", tick)
    assert f"worker pid {worker.pid} exited" in said[0]
    _until(fake_service.spec.ready, 20, "serving again")  # its parent started another
    assert watch.restarts == 0 and watch.worker_exits == 1


def test_stop_kills_a_worker_whose_leader_died_first(
    fake_service: ManagedProcess, marker: StackMarker
) -> None:
    worker = _worker(fake_service)
    os.kill(fake_service.pid, signal.SIGKILL)  # only the leader
    _until(lambda: fake_service.exited() is not None, 10, "exited")
    assert worker.is_running() and worker.ppid() != fake_service.pid
    fake_service.stop(grace_s=1.0)
    assert alive([worker]) == []
    assert not port_in_use(fake_service.spec.port)


def test_rapid_failures_back_off_then_give_up(tmp_path: Path, marker: StackMarker) -> None:
    spec = ProcessSpec("text", [sys.executable, "-c", "import sys; sys.exit(3)"], 0, lambda: False)
    proc = ManagedProcess(spec, tmp_path, marker)
    proc.start()
    said: list[str] = []
    supervisor = Supervisor({"text": proc}, FAST, said.append)
    watch = supervisor.watches["text"]
    _until(lambda: watch.phase == "failed", 20, "given up", supervisor.tick)
    died = [e for e in supervisor.events if e.kind == "died"]
    starts = [e for e in supervisor.events if e.kind == "restarting"]
    assert len(died) == 2 and len(starts) == 2 and supervisor.events[-1].kind == "gave_up"
    # 0.2 s, then 0.4 s before each restart.
    assert 0.15 <= starts[0].at - died[0].at < 1.0 and 0.35 <= starts[1].at - died[1].at < 1.2
    assert "exited with status 3; failed 3 times in a row, giving up on it" in said[-1]
    for _ in range(20):
        supervisor.tick()
    assert proc.starts == 3  # nothing after giving up


def test_failures_in_a_row_reset_after_a_healthy_period(fake_service: ManagedProcess) -> None:
    policy = RestartPolicy(first_delay_s=0.1, healthy_after_s=0.5, max_rapid_failures=2)
    supervisor = Supervisor({"speech": fake_service}, policy)
    watch = supervisor.watches["speech"]
    for restart in (1, 2, 3):  # two would be "rapid" failures in a row: give up
        time.sleep(0.6)  # healthy longer than healthy_after_s
        supervisor.tick()
        os.killpg(fake_service.pid, signal.SIGKILL)
        _until(lambda r=restart: watch.phase == "ready" and watch.restarts == r, 30, "back", supervisor.tick)
        assert watch.failures == 1


def _listener(port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    code = f"import socket,time; s=socket.socket(); s.bind(('127.0.0.1',{port})); s.listen(); time.sleep(120)"
    proc = subprocess.Popen([sys.executable, "-c", code], env={**os.environ, **env})
    _until(lambda: port_in_use(port), 10, "listening")
    return proc


def test_a_stale_port_holder_is_named_with_the_command_that_clears_it(tmp_path: Path) -> None:
    port = free_port()
    orphan_env = {STACK_ID_VAR: "deadbeef", PROCESS_VAR: "speech", SUPERVISOR_VAR: f"{os.getpid()}:1.00"}
    holder = _listener(port, orphan_env)
    try:
        (found,) = port_holders(port, "127.0.0.1")
        assert found.pid == holder.pid and found.marker is not None and found.marker.orphaned
        message = describe_holder("speech", port, found)
        assert f"speech port {port} is held by pid {holder.pid}" in message
        assert "left behind by modgate stack deadbeef" in message
        assert "`modgate down`" in message and f"`kill {holder.pid}`" in message

        ports = {name: free_port() for name in ("gateway", "metrics", "vision", "text", "traces")}
        stack = Stack(StackConfig(ports={**ports, "speech": port}, home=tmp_path / "home"))
        with pytest.raises(StackError, match=f"held by pid {holder.pid}"):
            stack.start(timeout_s=5)
        assert all(p.popen is None for p in stack.processes.values())  # refused before starting anything

        home = {"MODGATE_HOME": str(tmp_path / "home")}
        down = subprocess.run(
            [sys.executable, "-m", "modgate.tools.cli", "down", "--grace", "2"],
            env={**os.environ, **home},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert down.returncode == 0, down.stderr
        assert f"stopping pid {holder.pid}" in down.stderr
        assert holder.wait(timeout=10) is not None and not port_in_use(port)
    finally:
        holder.kill()
        holder.wait()


def test_a_foreign_port_holder_is_left_alone_and_named(tmp_path: Path) -> None:
    port = free_port()
    holder = _listener(port, {})
    try:
        message = describe_holder("gateway", port, port_holders(port, "127.0.0.1")[0])
        assert f"gateway port {port} is held by pid {holder.pid}" in message
        assert "not a modgate process" in message and "--gateway-port N (0 = any free)" in message
        others = [f"--{name}-port={free_port()}" for name in ("metrics", "speech", "vision", "text")]
        up = subprocess.run(
            [
                sys.executable,
                "-m",
                "modgate.tools.cli",
                "up",
                f"--gateway-port={port}",
                *others,
                "--no-trace-store",
            ],
            env={**os.environ, "MODGATE_HOME": str(tmp_path / "home")},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert up.returncode == 1
        assert f"gateway port {port} is held by pid {holder.pid}" in up.stderr, up.stderr
        down = subprocess.run(
            [sys.executable, "-m", "modgate.tools.cli", "down"],
            env={**os.environ, "MODGATE_HOME": str(tmp_path / "home")},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert down.returncode == 0 and holder.poll() is None  # not a stack's: not touched
    finally:
        holder.kill()
        holder.wait()


def test_a_supervised_stack_restarts_reports_and_stops_everything(tmp_path: Path) -> None:
    """Stack (what `modgate up` runs) with two fake services: a killed group is restarted in the
    background, the state file says so, and stop() leaves no process and no port behind."""
    ports = {name: free_port() for name in ("gateway", "metrics", "speech", "vision", "text", "traces")}
    stack = Stack(StackConfig(ports=ports, home=tmp_path / "home", trace_store=False))
    stack.processes = {
        name: ManagedProcess(
            ProcessSpec(
                name,
                [sys.executable, str(FAKE_SERVICE), str(ports[name])],
                ports[name],
                http_ready(f"http://127.0.0.1:{ports[name]}/readyz"),
            ),
            stack.log_dir,
            stack.marker,
        )
        for name in ("speech", "text")
    }
    stack.start(timeout_s=60)
    try:
        stack.supervise_in_background(policy=FAST)
        assert stack.supervisor is not None
        speech = stack.processes["speech"]
        orphans = [p for p in _worker_list(speech) if os.getpgid(p.pid) != speech.pid]
        os.killpg(speech.pid, signal.SIGKILL)
        watch = stack.supervisor.watches["speech"]
        _until(lambda: watch.phase == "ready" and watch.restarts == 1, 30, "restarted")

        def speech_state() -> dict[str, object]:
            return dict((read_state(stack.state_path) or {}).get("processes", {}).get("speech", {}))

        _until(lambda: speech_state().get("status") == "ready", 5, "ready in the state file")
        state = read_state(stack.state_path)
        assert state is not None and state["stack_id"] == stack.marker.stack_id
        assert state["processes"]["speech"]["restarts"] == 1 and state["processes"]["text"]["restarts"] == 0
        # A tick between the kill and the leader's death may first see its workers gone
        # (worker_exited): an observation of the same kill, not another failure.
        kinds = [e["kind"] for e in state["events"] if not e["kind"].startswith("worker_")]
        assert kinds == ["died", "restarting", "ready"], state["events"]
        assert orphans and alive(orphans) == []
        everything = [psutil.Process(pid) for pid in stack.marked_pids()]
        assert len(everything) == 4  # two leaders, two workers (in sessions of their own)
    finally:
        stack.stop(grace_s=2.0)
    assert alive(everything) == [] and stack.marked_pids() == []
    assert not any(port_in_use(ports[name]) for name in ("speech", "text"))
    assert not stack.state_path.exists()


def _worker_list(proc: ManagedProcess) -> list[psutil.Process]:
    _until(lambda: len(proc.members()) == 2, 10, "one worker")
    return proc.members()[1:]
