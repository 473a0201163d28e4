"""Fixtures for the vision service tests: a trained tiny CLIP and real `bentoml serve` processes."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
import pytest

from tests.services.vision.tinyclip import TinyClip, train_tiny_clip

REPO = Path(__file__).resolve().parents[3]
SERVE_COMMAND = [sys.executable, "-m", "bentoml", "serve", "services.vision.service:Vision"]
READY_TIMEOUT_S = 180.0  # two processes importing torch on a busy 2-core machine

# Present in every policy directory the service starts with (a directory needs one policy).
BASE_POLICY = """
name: base
version: "1"
neutral:
  vision_prompts: [a green square, a yellow triangle]
  text_exemplars: [hello]
categories:
  anything:
    description: placeholder so the directory is valid
    vision: {prompts: [a blue circle]}
profanity: {enabled: false}
"""


@dataclass
class VisionProcess:
    """A `bentoml serve services.vision.service:Vision` subprocess on 127.0.0.1."""

    process: subprocess.Popen[bytes]
    url: str
    log_path: Path
    policy_dir: Path
    env: dict[str, str] = field(default_factory=dict)

    def log_tail(self, chars: int = 6000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]

    def write_policy(self, filename: str, text: str) -> Path:
        path = self.policy_dir / filename
        path.write_text(text, encoding="utf-8")
        return path


def service_env(tmp: Path, **overrides: str) -> dict[str, str]:
    """The parent environment minus any MODGATE_* settings, plus hermetic test settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODGATE_")}
    env.update(
        BENTOML_HOME=str(tmp / "bentoml"),
        BENTOML_DO_NOT_TRACK="True",
        OTEL_SDK_DISABLED="true",
        # One intra-op thread: two OpenMP threads on a contended 2-core box run ~10x slower.
        MODGATE_VISION_THREADS="1",
        # Exact parity with open_clip's fp32 reference (the service's default, auto, picks bf16
        # on CPUs with AMX; test_vision_precision.py covers that path).
        MODGATE_VISION_PRECISION="fp32",
        PYTHONUNBUFFERED="1",
    )
    env.update(overrides)
    return env


def spawn_vision(env: dict[str, str], port: int, log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("wb") as log:
        return subprocess.Popen(
            [*SERVE_COMMAND, "--host", "127.0.0.1", "--port", str(port)],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop_process_tree(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server and its workers (they run in sessions of their own), SIGKILL leftovers."""
    try:
        tree = [psutil.Process(process.pid), *psutil.Process(process.pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        tree = []
    for member in tree:
        with contextlib.suppress(psutil.NoSuchProcess):
            member.terminate()
    _, alive = psutil.wait_procs(tree, timeout=15)
    for member in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            member.kill()
    psutil.wait_procs(alive, timeout=10)
    if process.poll() is None:
        process.kill()
    process.wait(timeout=10)


def wait_ready(service: VisionProcess, timeout: float = READY_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if service.process.poll() is not None:
            raise AssertionError(
                f"vision service exited with {service.process.returncode}:\n{service.log_tail()}"
            )
        try:
            if httpx.get(f"{service.url}/readyz", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"vision service not ready after {timeout:.0f} s:\n{service.log_tail()}")


@pytest.fixture(scope="session")
def start_vision(
    tmp_path_factory: pytest.TempPathFactory, free_port: Callable[[], int]
) -> Iterator[Callable[..., VisionProcess]]:
    """start_vision(**env) -> a ready VisionProcess; every one is stopped at session end."""
    started: list[VisionProcess] = []

    def start(*, ready: bool = True, **env_overrides: str) -> VisionProcess:
        tmp = tmp_path_factory.mktemp("vision-service")
        policy_dir = tmp / "policies"
        policy_dir.mkdir()
        (policy_dir / "base.yaml").write_text(BASE_POLICY, encoding="utf-8")
        env = service_env(tmp, MODGATE_POLICY_DIR=str(policy_dir), **env_overrides)
        port = free_port()
        log_path = tmp / "serve.log"
        service = VisionProcess(
            spawn_vision(env, port, log_path), f"http://127.0.0.1:{port}", log_path, policy_dir, env
        )
        started.append(service)
        if ready:
            wait_ready(service)
        return service

    yield start
    for service in started:
        stop_process_tree(service.process)


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory: pytest.TempPathFactory) -> TinyClip:
    """A tiny OpenCLIP trained on coloured shapes (open_clip config JSON + .pt), once per session."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # far faster than 2 contended OpenMP threads for these tiny ops
    try:
        clip = train_tiny_clip(tmp_path_factory.mktemp("tinyclip"))
    finally:
        torch.set_num_threads(threads)
    assert clip.accuracy >= 0.95, f"the tiny CLIP did not learn the shapes: held-out accuracy {clip.accuracy}"
    return clip


@pytest.fixture(scope="session")
def shapes_service(start_vision: Callable[..., VisionProcess], tiny_clip: TinyClip) -> VisionProcess:
    """The vision service serving the trained tiny CLIP through the checkpoint-path loader."""
    return start_vision(
        MODGATE_VISION_ARCH=str(tiny_clip.config_path),
        MODGATE_VISION_CHECKPOINT=str(tiny_clip.checkpoint_path),
        MODGATE_VISION_MAX_BATCH_SIZE="32",
        MODGATE_VISION_MAX_FRAME_BYTES="65536",
    )
