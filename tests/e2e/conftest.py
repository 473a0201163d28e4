"""Real processes on 127.0.0.1 for the end-to-end tests, started once per session.

The three model services (`bentoml serve`, a few seconds of model loading each) are shared
by every e2e test; gateways (`python -m gateway`, cheap) are started per purpose with their
own upstreams file. Everything is killed — process group and descendants — at teardown.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from modgate.client import ModerationClient
from modgate.tools.samples import Sample, benign_video, make_video, threat_video
from modgate.tools.stack import ManagedProcess, ProcessSpec, free_port, gateway_spec, http_ready, service_spec

# Tracing off: these tests are about verdicts; tests/modgate covers tracing.
QUIET_ENV = {"OTEL_SDK_DISABLED": "true", "PYTHONUNBUFFERED": "1"}
GATEWAY_ENV = {
    **QUIET_ENV,
    "MODGATE_GATEWAY_MODE": "models",
    "MODGATE_GATEWAY_SPLIT_WORKERS": "1",
    "MODGATE_GATEWAY_BREAKER_FAILURE_THRESHOLD": "3",
    "MODGATE_GATEWAY_BREAKER_RESET_TIMEOUT_S": "1.0",
}
START_TIMEOUT_S = 240.0


class Processes:
    """Starts, tracks and always stops the session's processes."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.procs: dict[str, ManagedProcess] = {}

    def start(self, spec: ProcessSpec) -> ManagedProcess:
        proc = ManagedProcess(spec, self.log_dir)
        proc.start()
        self.procs[spec.name] = proc
        return proc

    def wait_ready(self, *procs: ManagedProcess, timeout_s: float = START_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout_s
        pending = list(procs)
        while pending:
            for proc in list(pending):
                if proc.exited() is not None:
                    raise RuntimeError(f"{proc.name} exited while starting:\n{proc.log_tail(40)}")
                if proc.spec.ready():
                    pending.remove(proc)
            if pending and time.monotonic() > deadline:
                raise RuntimeError(f"not ready in {timeout_s} s: {[p.name for p in pending]}")
            time.sleep(0.2)

    def restart(self, name: str) -> ManagedProcess:
        proc = self.procs[name]
        proc.stop()
        proc.start()
        self.wait_ready(proc)
        return proc

    def stop(self, name: str) -> None:
        self.procs.pop(name).stop(grace_s=5.0)

    def stop_all(self) -> None:
        for name in reversed(list(self.procs)):
            self.stop(name)


@dataclass
class Gateway:
    target: str
    metrics_url: str
    proc: ManagedProcess

    def client(self, **kw: object) -> ModerationClient:
        return ModerationClient(self.target, **kw)  # type: ignore[arg-type]

    def metrics(self) -> str:
        return httpx.get(self.metrics_url, timeout=5, trust_env=False).text


def metric_value(text: str, name: str, **labels: str) -> float:
    """Sum of the samples of `name` whose labels include `labels` (0 when absent)."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        head, _, value = line.rpartition(" ")
        if all(f'{k}="{v}"' in head for k, v in labels.items()):
            total += float(value)
    return total


@dataclass
class Services:
    urls: dict[str, str]
    processes: Processes

    def upstreams_yaml(self, **override: str) -> str:
        """Upstreams file text; `override` maps a service to extra YAML lines (e.g. a canary)."""
        lines = []
        for service in ("speech", "vision", "text"):
            lines.append(f"{service}:")
            lines.append(f'  stable: {{url: "{self.urls[service]}"}}')
            if service in override:
                lines.append("  " + override[service])
        return "\n".join(lines) + "\n"


@pytest.fixture(scope="session")
def processes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Processes]:
    procs = Processes(tmp_path_factory.mktemp("e2e-logs"))
    try:
        yield procs
    finally:
        procs.stop_all()


@pytest.fixture(scope="session")
def services(processes: Processes) -> Services:
    env = {**QUIET_ENV, "MODGATE_VISION_ALLOW_UNCALIBRATED": "true"}
    started = []
    urls = {}
    for service in ("speech", "vision", "text"):
        port = free_port()
        started.append(processes.start(service_spec(service, port, python=sys.executable, env=env)))
        urls[service] = f"http://127.0.0.1:{port}"
    processes.wait_ready(*started)
    return Services(urls, processes)


@pytest.fixture(autouse=True)
def _services_alive(request: pytest.FixtureRequest) -> None:
    """Before a test that uses the shared services, bring back any that died (a test that
    kills one and fails before restarting it must not fail every test after it)."""
    if "services" not in request.fixturenames:
        return
    services: Services = request.getfixturevalue("services")
    for name in ("speech", "vision", "text"):
        proc = services.processes.procs.get(name)
        if proc is not None and (proc.exited() is not None or not proc.spec.ready()):
            services.processes.restart(name)


@pytest.fixture(scope="session")
def start_gateway(processes: Processes, tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Gateway]:
    """start_gateway(name, upstreams_yaml, **env) -> a ready gateway process."""
    config_dir = tmp_path_factory.mktemp("gateways")

    def start(name: str, upstreams_yaml: str, **env: str) -> Gateway:
        """Each gateway keeps its verdicts in a store of its own unless `env` names one
        (MODGATE_STORE_URL): two gateways sent the same request_id both compute."""
        upstreams = config_dir / f"{name}.yaml"
        upstreams.write_text(upstreams_yaml, encoding="utf-8")
        port, metrics_port = free_port(), free_port()
        spec = gateway_spec(
            port,
            metrics_port=metrics_port,
            upstreams_file=upstreams,
            python=sys.executable,
            env={
                **GATEWAY_ENV,
                "MODGATE_STORE_URL": f"sqlite:///{config_dir / f'{name}-{port}-verdicts.db'}",
                "MODGATE_STORE_SPOOL_DIR": str(config_dir / f"{name}-{port}-spool"),
                **env,
            },
            name=name,
        )
        proc = processes.start(spec)
        processes.wait_ready(proc, timeout_s=60)
        return Gateway(f"127.0.0.1:{port}", f"http://127.0.0.1:{metrics_port}/metrics", proc)

    return start


@pytest.fixture(scope="session")
def gateway(services: Services, start_gateway: Callable[..., Gateway]) -> Gateway:
    """The session's gateway over the three real services."""
    return start_gateway("gateway", services.upstreams_yaml())


@pytest.fixture(scope="session")
def start_fake(processes: Processes) -> Callable[..., str]:
    """start_fake(name, mode, **args) -> URL of a tests.e2e.fake_upstream process."""

    def start(name: str, mode: str, delay_s: float = 5.0) -> str:
        port = free_port()
        spec = ProcessSpec(
            name=name,
            argv=[
                sys.executable,
                "-m",
                "tests.e2e.fake_upstream",
                "--port",
                str(port),
                "--mode",
                mode,
                "--delay-s",
                str(delay_s),
            ],
            port=port,
            ready=http_ready(f"http://127.0.0.1:{port}/readyz"),
            env=QUIET_ENV,
        )
        processes.wait_ready(processes.start(spec), timeout_s=60)
        return f"http://127.0.0.1:{port}"

    return start


@pytest.fixture(scope="session")
def threat(tmp_path_factory: pytest.TempPathFactory) -> Sample:
    return threat_video(tmp_path_factory.mktemp("samples") / "threat.mp4")


@pytest.fixture(scope="session")
def benign(tmp_path_factory: pytest.TempPathFactory) -> Sample:
    return benign_video(tmp_path_factory.mktemp("samples") / "benign.mp4")


@pytest.fixture(scope="session")
def make_sample(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Sample]:
    directory = tmp_path_factory.mktemp("more-samples")
    counter = iter(range(10_000))

    def make(*args: object, **kw: object) -> Sample:
        return make_video(directory / f"sample{next(counter)}.mp4", *args, **kw)  # type: ignore[arg-type]

    return make
