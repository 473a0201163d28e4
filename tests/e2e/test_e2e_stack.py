"""`modgate up` as a user runs it: health-gated start, a working stack, no orphans after SIGINT."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from modgate.client import ModerationClient
from modgate.v1 import moderation_pb2 as pb

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]


def test_modgate_up_serves_and_leaves_no_orphans_after_sigint(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {**os.environ, "MODGATE_HOME": str(home), "OTEL_SDK_DISABLED": "true"}
    ports = [f"--{name}-port=0" for name in ("gateway", "metrics", "speech", "vision", "text", "traces")]
    log = (tmp_path / "up.log").open("wb")
    up = subprocess.Popen(
        [sys.executable, "-m", "modgate.tools.cli", "up", *ports],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    descendants: list[psutil.Process] = []
    try:
        state_path = home / "stack.json"
        until = time.monotonic() + 400
        state: dict = {}
        while time.monotonic() < until:
            assert up.poll() is None, (tmp_path / "up.log").read_text()
            if state_path.exists():
                state = json.loads(state_path.read_text())
                if state["status"] == "ready":
                    break
            time.sleep(0.5)
        assert state.get("status") == "ready", (tmp_path / "up.log").read_text()
        assert set(state["processes"]) == {"traces", "speech", "vision", "text", "gateway"}
        assert state["supervisor_pid"] == up.pid

        with ModerationClient(state["gateway"], timeout_s=30) as client:
            verdict = client.moderate_text("Double your bitcoin in 24 hours")
        assert verdict.decision == pb.DECISION_BLOCK

        # Every process of the stack, BentoML's workers included, each child in its own group.
        descendants = psutil.Process(up.pid).children(recursive=True)
        leaders = {info["pid"] for info in state["processes"].values()}
        assert leaders <= {p.pid for p in descendants}
        assert len(descendants) > len(leaders)  # bentoml serve runs worker processes
        assert all(os.getpgid(pid) == pid for pid in leaders)

        up.send_signal(signal.SIGINT)
        assert up.wait(timeout=120) == 0
        _gone, alive = psutil.wait_procs(descendants, timeout=5)
        assert alive == [], [(p.pid, p.cmdline()) for p in alive]
        assert not state_path.exists()
        assert "SIGINT: stopping" in (tmp_path / "up.log").read_text()
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()
        for proc in descendants:  # never leave anything behind, even when the test failed
            if proc.is_running():
                proc.kill()
        log.close()
