"""`modgate up`: the local stack as child processes, health-gated, stopped cleanly.

Starts the trace store, the three model services (`bentoml serve` on 127.0.0.1:3001/3002/3003)
and the gateway (`python -m gateway`, gRPC 127.0.0.1:50051, metrics :9464). Each child runs in
its own process group (so a terminal's Ctrl-C reaches only `modgate up`, which then stops
them in order) and is stopped by signalling its whole group: SIGTERM, a grace period, then
SIGKILL — BentoML's worker processes included, so nothing is left behind. PIDs, ports and log
paths go to a state file under $MODGATE_HOME (default ~/.modgate).

The `Stack` class is also what the end-to-end tests and `modgate demo` use.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import httpx
import psutil

HOST = "127.0.0.1"
DEFAULT_PORTS = {
    "gateway": 50051,
    "metrics": 9464,
    "speech": 3001,
    "vision": 3002,
    "text": 3003,
    "traces": 4318,
}
SERVICE_TARGETS = {
    "speech": "services.speech.service:Speech",
    "vision": "services.vision.service:Vision",
    "text": "services.text.service:Text",
}
STATE_FILE = "stack.json"
# Speech threads on a machine with fewer than 4 cores (see thread_plan).
SPEECH_THREADS_SMALL = 2

Say = Callable[[str], None]


def modgate_home() -> Path:
    configured = os.environ.get("MODGATE_HOME", "").strip()
    return Path(configured).expanduser() if configured else Path.home() / ".modgate"


def free_port(host: str = HOST) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_in_use(port: int, host: str = HOST) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


# --- health checks ------------------------------------------------------------------------


def http_ready(url: str) -> Callable[[], bool]:
    def check() -> bool:
        try:
            return httpx.get(url, timeout=1.0, trust_env=False).status_code == 200
        except httpx.HTTPError:
            return False

    return check


def grpc_serving(target: str) -> Callable[[], bool]:
    def check() -> bool:
        import grpc
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        with grpc.insecure_channel(target) as channel:
            try:
                reply = health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(service=""), timeout=1.0
                )
            except grpc.RpcError:
                return False
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)

    return check


# --- one child ----------------------------------------------------------------------------


@dataclass
class ProcessSpec:
    name: str
    argv: list[str]
    port: int
    ready: Callable[[], bool]
    env: dict[str, str] = field(default_factory=dict)  # on top of the parent's environment


class ManagedProcess:
    """A child in its own process group; stop() leaves no member of that group alive."""

    def __init__(self, spec: ProcessSpec, log_dir: Path) -> None:
        self.spec = spec
        self.log_path = log_dir / f"{spec.name}.log"
        self.popen: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0
        self.ready_at: float | None = None
        self.stopped = False
        self._strays: list[psutil.Process] = []

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            self.popen = subprocess.Popen(
                self.spec.argv,
                env={**os.environ, **self.spec.env},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # own session + process group: pgid == pid
            )
        self.started_at = time.monotonic()
        self.ready_at = None
        self.stopped = False

    def exited(self) -> int | None:
        return None if self.popen is None else self.popen.poll()

    def members(self) -> list[psutil.Process]:
        """The leader and every descendant still alive (BentoML workers included)."""
        if self.popen is None:
            return []
        try:
            leader = psutil.Process(self.pid)
            return [leader, *leader.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def _group_alive(self) -> bool:
        if self.popen is None:
            return False
        self.popen.poll()  # reap the leader if it exited, so it does not linger as a zombie
        try:
            os.killpg(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        # A group whose only members are zombies waiting to be reaped is as good as gone.
        return any(p.status() != psutil.STATUS_ZOMBIE for p in _group_members(self.pid))

    def signal(self, sig: int) -> None:
        if self.popen is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)

    def kill(self) -> None:
        """SIGKILL the whole group now (tests use it to simulate a crash)."""
        self.stopped = True
        self._strays = self.members()
        self.signal(signal.SIGKILL)
        self._finish(self._strays, 5.0)

    def stop(self, grace_s: float = 10.0) -> None:
        """SIGTERM the group, wait up to grace_s, then SIGKILL whatever is left."""
        self.terminate()
        self.wait_gone(time.monotonic() + grace_s)
        self.force()

    def terminate(self) -> None:
        if self.popen is None or self.stopped:
            return
        self.stopped = True
        self._strays = self.members()  # snapshot before the group starts to exit
        self.signal(signal.SIGTERM)

    def wait_gone(self, deadline: float) -> bool:
        while self._group_alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        return not self._group_alive()

    def force(self) -> None:
        if self.popen is None:
            return
        if self._group_alive():
            self.signal(signal.SIGKILL)
        self._finish(self._strays, 5.0)

    def _finish(self, strays: Iterable[psutil.Process], timeout_s: float) -> None:
        # Descendants that moved to another process group would escape killpg: kill them too.
        alive = [p for p in strays if p.is_running()]
        for proc in alive:
            with contextlib.suppress(psutil.NoSuchProcess):
                if proc.status() != psutil.STATUS_ZOMBIE:
                    proc.kill()
        psutil.wait_procs(alive, timeout=timeout_s)
        if self.popen is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=timeout_s)

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def _group_members(pgid: int) -> list[psutil.Process]:
    members = []
    for proc in psutil.process_iter(["pid"]):
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied, ProcessLookupError):
            if os.getpgid(proc.pid) == pgid:
                members.append(proc)
    return members


# --- the stack ----------------------------------------------------------------------------


class StackError(RuntimeError):
    pass


class StackInterrupted(StackError):
    """Asked to stop (a signal) while starting."""


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
        ready=http_ready(f"http://{host}:{port}/readyz"),
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
    cores while a request runs all three at once (measured on 2 cores: ViT-B-32 at 2 threads
    next to other work ran 4x slower than at 1). Speech is the longest stage of a video (the
    transcript must exist before it is scored), so it gets the larger share; the vision and
    text encoders get what is left. bench/e2e.py measures the alternatives.
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
            # place that sheds load. Speech's own limit (4) answered 429 to the 5th caller,
            # which became a FAILED, fail-closed AUDIO modality (8 callers: 8 of 16 degraded).
            "MODGATE_SPEECH_MAX_CONCURRENCY": os.environ.get("MODGATE_GATEWAY_MAX_CONCURRENT_REQUESTS", "16"),
        },
        "vision": {"MODGATE_VISION_THREADS": str(vision), "OMP_NUM_THREADS": str(vision)},
        "text": {"MODGATE_TEXT_THREADS": str(text), "OMP_NUM_THREADS": str(text)},
    }
    # Settings already in the environment (the user's) win over the plan.
    return {name: {k: v for k, v in env.items() if k not in os.environ} for name, env in plan.items()}


def local_upstreams_yaml(host: str, ports: dict[str, int]) -> str:
    return "".join(
        f'{s}:\n  stable: {{url: "http://{host}:{ports[s]}"}}\n' for s in ("speech", "vision", "text")
    )


class Stack:
    def __init__(self, config: StackConfig | None = None) -> None:
        self.config = config or StackConfig()
        self.home = self.config.home
        self.log_dir = self.home / "logs"
        self.state_path = self.home / STATE_FILE
        self.processes: dict[str, ManagedProcess] = {}
        for spec in self._specs():
            self.processes[spec.name] = ManagedProcess(spec, self.log_dir)

    @property
    def gateway_target(self) -> str:
        return f"{self.config.host}:{self.config.ports['gateway']}"

    @property
    def metrics_url(self) -> str:
        return f"http://{self.config.host}:{self.config.ports['metrics']}/metrics"

    def _specs(self) -> list[ProcessSpec]:
        cfg = self.config
        ports = cfg.ports
        common = {"PYTHONUNBUFFERED": "1", "MODGATE_HOME": str(self.home)}
        if cfg.trace_store:
            common.update(
                OTEL_EXPORTER_OTLP_ENDPOINT=f"http://{cfg.host}:{ports['traces']}",
                OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
                MODGATE_TRACE_DB=str(self.home / "traces.db"),
            )
        else:
            common["OTEL_TRACES_EXPORTER"] = "none"

        def env(name: str, extra: dict[str, str] | None = None) -> dict[str, str]:
            return {**common, **(extra or {}), **cfg.env.get(name, {})}

        specs: list[ProcessSpec] = []
        if cfg.trace_store:
            specs.append(
                ProcessSpec(
                    name="traces",
                    argv=[
                        cfg.python,
                        "-m",
                        "modgate.tracestore",
                        "--host",
                        cfg.host,
                        "--port",
                        str(ports["traces"]),
                        "--db",
                        str(self.home / "traces.db"),
                    ],
                    port=ports["traces"],
                    ready=http_ready(f"http://{cfg.host}:{ports['traces']}/readyz"),
                    env=env("traces"),
                )
            )
        # No CLIP weights exist offline: vision runs explicitly uncalibrated, and the gateway
        # reports VISUAL as UNCALIBRATED and keeps it out of decisions.
        vision_env = {"MODGATE_VISION_ALLOW_UNCALIBRATED": "true"}
        threads = thread_plan(usable_cores())
        for service in ("speech", "vision", "text"):
            extra = {**threads[service], **(vision_env if service == "vision" else {})}
            specs.append(
                service_spec(
                    service,
                    ports[service],
                    host=cfg.host,
                    python=cfg.python,
                    env=env(service, extra),
                )
            )
        specs.append(
            gateway_spec(
                ports["gateway"],
                metrics_port=ports["metrics"],
                upstreams_file=self.home / "upstreams.yaml",
                host=cfg.host,
                python=cfg.python,
                env=env("gateway"),
            )
        )
        return specs

    # --- lifecycle ------------------------------------------------------------------------

    def check_ports(self) -> None:
        busy = [
            f"{name} {port}"
            for name, port in self.config.ports.items()
            if (name != "traces" or self.config.trace_store) and port_in_use(port, self.config.host)
        ]
        if busy:
            raise StackError(
                f"port(s) already in use on {self.config.host}: {', '.join(busy)}. Is another `modgate up` "
                f"running (see {self.state_path})? Stop it, or pick other ports (modgate up --help)."
            )

    def start(
        self,
        *,
        timeout_s: float = 300.0,
        say: Say | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> None:
        """Start every process and return once all are healthy; on failure stop them all."""
        say = say or (lambda _line: None)
        self.home.mkdir(parents=True, exist_ok=True)
        self._check_previous()
        self.check_ports()
        upstreams = self.config.upstreams_yaml or local_upstreams_yaml(self.config.host, self.config.ports)
        (self.home / "upstreams.yaml").write_text(upstreams, encoding="utf-8")
        started = time.monotonic()
        try:
            for proc in self.processes.values():
                if should_stop and should_stop():
                    raise StackInterrupted("interrupted while starting")
                proc.start()
                say(f"started {proc.name:<8} pid {proc.pid:<7} port {proc.spec.port}  log {proc.log_path}")
            self.write_state("starting")
            self.wait_ready(
                list(self.processes), timeout_s=timeout_s, say=say, started=started, should_stop=should_stop
            )
        except BaseException:
            self.stop(say=say)
            raise
        self.write_state("ready")

    def wait_ready(
        self,
        names: list[str],
        *,
        timeout_s: float = 300.0,
        say: Say | None = None,
        started: float | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> None:
        say = say or (lambda _line: None)
        started = started or time.monotonic()
        pending = list(names)
        last_note = time.monotonic()
        while pending:
            if should_stop and should_stop():
                raise StackInterrupted(f"interrupted while waiting for {', '.join(pending)}")
            for name in list(pending):
                proc = self.processes[name]
                code = proc.exited()
                if code is not None:
                    raise StackError(
                        f"{name} exited with status {code} while starting; last log lines "
                        f"({proc.log_path}):\n{proc.log_tail()}"
                    )
                if proc.spec.ready():
                    proc.ready_at = time.monotonic()
                    pending.remove(name)
                    say(f"ready   {name:<8} after {proc.ready_at - proc.started_at:5.1f} s")
            if not pending:
                break
            elapsed = time.monotonic() - started
            if elapsed > timeout_s:
                raise StackError(
                    f"not healthy after {timeout_s:.0f} s: {', '.join(pending)} (see {self.log_dir})"
                )
            if time.monotonic() - last_note >= 10:
                say(f"waiting for {', '.join(pending)} ({elapsed:.0f} s; models load once at start)")
                last_note = time.monotonic()
            time.sleep(0.25)

    def restart(self, name: str, *, timeout_s: float = 300.0) -> None:
        proc = self.processes[name]
        proc.stop()
        proc.start()
        self.wait_ready([name], timeout_s=timeout_s)
        self.write_state("ready")

    def stop(self, *, grace_s: float = 10.0, say: Say | None = None) -> None:
        """Gateway first (no new work), then everything else at once; SIGKILL after grace_s."""
        say = say or (lambda _line: None)
        live = [p for p in self.processes.values() if p.popen is not None and not p.stopped]
        front = [p for p in live if p.name == "gateway"]
        rest = [p for p in reversed(live) if p.name != "gateway"]
        for wave in (front, rest):
            for proc in wave:
                proc.terminate()
            deadline = time.monotonic() + grace_s
            for proc in wave:
                clean = proc.wait_gone(deadline)
                proc.force()
                say(f"stopped {proc.name}" + ("" if clean else f" (killed after {grace_s:.0f} s)"))
        with contextlib.suppress(FileNotFoundError):
            self.state_path.unlink()

    def first_exited(self) -> ManagedProcess | None:
        return next((p for p in self.processes.values() if p.exited() is not None), None)

    def pids(self) -> list[int]:
        """Every live process of the stack (leaders and descendants)."""
        return [p.pid for proc in self.processes.values() for p in proc.members()]

    # --- state file -----------------------------------------------------------------------

    def write_state(self, status: str) -> None:
        state = {
            "status": status,
            "supervisor_pid": os.getpid(),
            "gateway": self.gateway_target,
            "metrics": self.metrics_url,
            "home": str(self.home),
            "processes": {
                name: {
                    "pid": proc.pid if proc.popen else None,
                    "pgid": proc.pid if proc.popen else None,
                    "port": proc.spec.port,
                    "log": str(proc.log_path),
                    "argv": proc.spec.argv,
                }
                for name, proc in self.processes.items()
            },
        }
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2), encoding="utf-8")
        tmp.replace(self.state_path)

    def _check_previous(self) -> None:
        try:
            previous = json.loads(self.state_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        supervisor = previous.get("supervisor_pid")
        if supervisor and supervisor != os.getpid() and psutil.pid_exists(supervisor):
            raise StackError(
                f"a stack is already running (supervisor pid {supervisor}, state {self.state_path}); "
                f"stop it with Ctrl-C in its terminal or `kill -INT {supervisor}`"
            )
        # A supervisor that died without cleaning up (SIGKILL): stop what it left behind.
        for info in previous.get("processes", {}).values():
            pgid = info.get("pgid")
            if pgid:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pgid, signal.SIGKILL)
        self.state_path.unlink(missing_ok=True)


# --- CLI ----------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    for name, port in DEFAULT_PORTS.items():
        parser.add_argument(
            f"--{name}-port", type=int, default=port, help=f"{name} port (default {port}; 0 = any free)"
        )
    parser.add_argument("--no-trace-store", action="store_true", help="do not run the local trace store")
    parser.add_argument(
        "--timeout", type=float, default=300.0, help="seconds to wait for health (default 300)"
    )


def config_from_args(args: argparse.Namespace) -> StackConfig:
    ports = {name: getattr(args, f"{name}_port") or free_port() for name in DEFAULT_PORTS}
    return StackConfig(ports=ports, trace_store=not args.no_trace_store)


def _say(line: str) -> None:
    print(f"modgate up: {line}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    stack = Stack(config_from_args(args))
    received: list[str] = []

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        received.append(signal.Signals(signum).name)

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    try:
        stack.start(timeout_s=args.timeout, say=_say, should_stop=lambda: bool(received))
        _say(
            f"stack ready: gateway {stack.gateway_target}, metrics {stack.metrics_url}, "
            f"state {stack.state_path}. Try `modgate moderate --gateway {stack.gateway_target} FILE`. "
            "Ctrl-C stops everything."
        )
        while not received:
            dead = stack.first_exited()
            if dead is not None:
                _say(f"{dead.name} exited with status {dead.exited()}; stopping the stack. Last log lines:")
                print(dead.log_tail(), file=sys.stderr)
                return 1
            time.sleep(0.2)
        _say(f"{received[0]}: stopping")
        return 0
    except StackInterrupted:
        _say(f"{received[0] if received else 'signal'}: stopped while starting")
        return 0
    except StackError as exc:
        _say(str(exc))
        return 1
    finally:
        stack.stop(say=_say)
