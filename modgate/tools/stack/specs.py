"""What the local stack runs: its configuration, one process spec per child, the thread plan.

:func:`stack_specs` turns a :class:`StackConfig` into the processes `modgate up` starts, in
order: the trace store (optional), the three model services (`bentoml serve`), the gateway
(`python -m gateway`), the review console (`python -m modgate.console`, when a port is given:
`modgate up` gives 8080). The single-process builders (:func:`service_spec`,
:func:`gateway_spec`, :func:`trace_store_spec`) are also what tests use to start one process.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from modgate.ports import DEFAULT_PORTS, HOST, http_url
from modgate.tools.stack.health import grpc_serving, http_ready
from modgate.tools.stack.process import ProcessSpec

SERVICES = ("speech", "vision", "text")
SERVICE_TARGETS = {
    "speech": "services.speech.service:Speech",
    "vision": "services.vision.service:Vision",
    "text": "services.text.service:Text",
}
# Speech threads on a machine with fewer than 4 cores (see thread_plan).
SPEECH_THREADS_SMALL = 2


def modgate_home() -> Path:
    """$MODGATE_HOME, else ~/.modgate: the stack's state file, logs, trace database, samples."""
    configured = os.environ.get("MODGATE_HOME", "").strip()
    return Path(configured).expanduser() if configured else Path.home() / ".modgate"


@dataclass
class StackConfig:
    host: str = HOST
    ports: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_PORTS))
    home: Path = field(default_factory=modgate_home)
    trace_store: bool = True
    python: str = sys.executable
    # Extra environment per process name ("speech", "vision", "text", "gateway", "traces").
    env: dict[str, dict[str, str]] = field(default_factory=dict)
    # Text of the upstreams file; default: the three local services at the ports above.
    upstreams_yaml: str | None = None
    # The review console's port; None: no console (`modgate up` runs one unless --no-console).
    console_port: int | None = None

    @property
    def upstreams_file(self) -> Path:
        return self.home / "upstreams.yaml"

    @property
    def trace_db(self) -> Path:
        return self.home / "traces.db"


def service_spec(
    service: str,
    port: int,
    *,
    host: str = HOST,
    python: str = sys.executable,
    env: dict[str, str] | None = None,
    name: str | None = None,
) -> ProcessSpec:
    """`bentoml serve services.<service>.service:<Class>` on host:port."""
    prefix = f"MODGATE_{service.upper()}_"
    return ProcessSpec(
        name=name or service,
        argv=[
            python,
            "-m",
            "bentoml",
            "serve",
            SERVICE_TARGETS[service],
            "--host",
            host,
            "--port",
            str(port),
        ],
        port=port,
        ready=http_ready(f"{http_url(port, host)}/readyz"),
        env={prefix + "HOST": host, prefix + "PORT": str(port), **(env or {})},
    )


def gateway_spec(
    port: int,
    *,
    metrics_port: int,
    upstreams_file: Path,
    host: str = HOST,
    python: str = sys.executable,
    env: dict[str, str] | None = None,
    name: str = "gateway",
) -> ProcessSpec:
    return ProcessSpec(
        name=name,
        argv=[python, "-m", "gateway"],
        port=port,
        ready=grpc_serving(f"{host}:{port}"),
        env={
            "MODGATE_GATEWAY_LISTEN": f"{host}:{port}",
            "MODGATE_GATEWAY_METRICS_PORT": str(metrics_port),
            "MODGATE_GATEWAY_UPSTREAMS_FILE": str(upstreams_file),
            **(env or {}),
        },
    )


def trace_store_spec(
    port: int,
    *,
    db: Path,
    host: str = HOST,
    python: str = sys.executable,
    env: dict[str, str] | None = None,
    name: str = "traces",
) -> ProcessSpec:
    """`python -m modgate.tools.tracestore` (OTLP/HTTP) on host:port, spans kept in `db`."""
    return ProcessSpec(
        name=name,
        argv=[python, "-m", "modgate.tools.tracestore", "--host", host, "--port", str(port), "--db", str(db)],
        port=port,
        ready=http_ready(f"{http_url(port, host)}/readyz"),
        env=dict(env or {}),
    )


def console_spec(
    port: int,
    *,
    trace_db: Path,
    host: str = HOST,
    python: str = sys.executable,
    env: dict[str, str] | None = None,
    name: str = "console",
) -> ProcessSpec:
    """`python -m modgate.console` on host:port over the same verdict store as the gateway
    (MODGATE_STORE_URL, else the SQLite file under MODGATE_HOME)."""
    return ProcessSpec(
        name=name,
        argv=[python, "-m", "modgate.console"],
        port=port,
        ready=http_ready(f"{http_url(port, host)}/readyz"),
        env={
            "MODGATE_CONSOLE_HOST": host,
            "MODGATE_CONSOLE_PORT": str(port),
            "MODGATE_CONSOLE_TRACE_DB": str(trace_db),
            **(env or {}),
        },
    )


def stack_specs(config: StackConfig) -> list[ProcessSpec]:
    """The stack's processes in start order, each with the environment it runs with."""
    ports = config.ports
    common = {"PYTHONUNBUFFERED": "1", "MODGATE_HOME": str(config.home)}
    if config.trace_store:
        common.update(
            OTEL_EXPORTER_OTLP_ENDPOINT=http_url(ports["traces"], config.host),
            OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
            MODGATE_TRACE_DB=str(config.trace_db),
        )
    else:
        common["OTEL_TRACES_EXPORTER"] = "none"

    def env(name: str, extra: dict[str, str] | None = None) -> dict[str, str]:
        return {**common, **(extra or {}), **config.env.get(name, {})}

    where = {"host": config.host, "python": config.python}
    specs: list[ProcessSpec] = []
    if config.trace_store:
        specs.append(trace_store_spec(ports["traces"], db=config.trace_db, env=env("traces"), **where))
    # No CLIP weights exist offline: vision runs explicitly uncalibrated, and the gateway
    # reports VISUAL as UNCALIBRATED and keeps it out of decisions.
    vision_env = {"MODGATE_VISION_ALLOW_UNCALIBRATED": "true"}
    threads = thread_plan(usable_cores())
    for service in SERVICES:
        extra = {**threads[service], **(vision_env if service == "vision" else {})}
        specs.append(service_spec(service, ports[service], env=env(service, extra), **where))
    specs.append(
        gateway_spec(
            ports["gateway"],
            metrics_port=ports["metrics"],
            upstreams_file=config.upstreams_file,
            env=env("gateway"),
            **where,
        )
    )
    if config.console_port is not None:
        specs.append(console_spec(config.console_port, trace_db=config.trace_db, env=env("console"), **where))
    return specs


def usable_cores() -> int:
    """CPU cores this process may use: its affinity mask, capped by a cgroup v2 CPU quota."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            cores = min(cores, max(1, -(-int(quota) // int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cores)


def thread_plan(cores: int) -> dict[str, dict[str, str]]:
    """Intra-op threads (and speech's admission) per model service, so the stack's processes
    share the cores.

    Every model library defaults to one thread per core, as if it owned the machine; on a laptop
    the three services each start that many OpenMP threads, which spin-wait for each other's
    cores while a request runs all three at once (bench/README.md has what that cost). Speech
    is the longest stage of a video (the transcript must exist before it is scored), so it gets
    the larger share; the vision and text encoders get what is left. bench/e2e.py measures the
    alternatives.
    """
    speech = max(1, cores // 2) if cores >= 4 else min(cores, SPEECH_THREADS_SMALL)
    vision = max(1, cores - speech - 1) if cores >= 4 else 1
    text = 1
    plan = {
        "speech": {
            "MODGATE_SPEECH_THREADS": str(speech),
            "OMP_NUM_THREADS": str(speech),
            # Speech queues requests for its one model itself; admitting as many as the gateway
            # lets in keeps the gateway's admission (RESOURCE_EXHAUSTED + retry-after-ms) the one
            # place that sheds load. A lower limit in speech answers 429 to the callers beyond
            # it, and each of those becomes a FAILED, fail-closed AUDIO modality.
            "MODGATE_SPEECH_MAX_CONCURRENCY": os.environ.get("MODGATE_GATEWAY_MAX_CONCURRENT_REQUESTS", "16"),
        },
        "vision": {"MODGATE_VISION_THREADS": str(vision), "OMP_NUM_THREADS": str(vision)},
        "text": {"MODGATE_TEXT_THREADS": str(text), "OMP_NUM_THREADS": str(text)},
    }
    # Settings already in the environment (the user's) win over the plan.
    return {name: {k: v for k, v in env.items() if k not in os.environ} for name, env in plan.items()}


def local_upstreams_yaml(host: str, ports: dict[str, int]) -> str:
    """The gateway's upstreams file for the three local services."""
    return "".join(f'{s}:\n  stable: {{url: "{http_url(ports[s], host)}"}}\n' for s in SERVICES)
