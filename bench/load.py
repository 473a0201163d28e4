"""Bounded load over the real gRPC API: success rate, statuses, latency, backpressure, faults.

    python -m bench.load --start-stack                       # own local stack on free ports
    python -m bench.load --target 127.0.0.1:50051 --clients 8 --duration 60
    python -m bench.load --start-stack --kill-services       # SIGKILL speech, vision, text in turn

Closed loop: `--clients` callers each send one request at a time (a text-only request or one
of a few small videos, alternating), every call with a deadline (`--deadline`). A
RESOURCE_EXHAUSTED answer carries "retry-after-ms"; the caller waits that long (capped) before
its next request, as a well-behaved client does. So the load is bounded by construction and
what it shows is how the gateway sheds the excess: with fewer slots than callers
(`--max-inflight`, with --start-stack) some calls are refused at once with a retry hint instead
of queueing without bound, and the latency of the admitted ones stays put.

With --kill-services (needs --start-stack) each model service is SIGKILLed in turn mid-run and
started again; every request must still get an answer inside its deadline (a verdict,
a degraded verdict, or a retryable status), and the recovery time is measured: from the
restart to the first answer in which that service's modality ran again.

Prints a summary and writes bench/results/load.json (or --json PATH).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import grpc

from modgate.v1 import moderation_pb2 as pb
from modgate.v1 import moderation_pb2_grpc as pb_grpc

RESULTS = Path(__file__).resolve().parent / "results"
MODALITY_NAMES = {v: k.removeprefix("MODALITY_") for k, v in pb.Modality.items()}
STATE_NAMES = {v: k.removeprefix("MODALITY_STATE_") for k, v in pb.ModalityState.items()}
# The modality each service's answer shows up in (speech feeds AUDIO; text feeds TEXT and the
# transcript part of AUDIO).
SERVICE_MODALITY = {"speech": "AUDIO", "vision": "VISUAL", "text": "TEXT"}
# A modality state that means "the service answered" (vision runs uncalibrated offline).
SERVED = {"OK", "UNCALIBRATED"}
# Statuses a caller can act on: a verdict or "try again later".
RETRYABLE = {"RESOURCE_EXHAUSTED", "UNAVAILABLE"}
# A call counts as hung when it comes back this much after its deadline.
HUNG_SLACK_S = 1.0


@dataclass(frozen=True)
class Work:
    """One kind of request the callers send."""

    kind: str  # "text" or "video"
    request: pb.ModerateRequest


@dataclass
class Outcome:
    client: int
    kind: str
    request_id: str
    started: float  # time.monotonic()
    ended: float
    status: str  # "OK" or the gRPC status name
    deadline_s: float
    retry_after_ms: int | None = None
    degraded: bool = False
    modalities: dict[str, str] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)  # per modality, when not OK
    details: str = ""

    @property
    def latency_s(self) -> float:
        return self.ended - self.started

    @property
    def hung(self) -> bool:
        return self.latency_s > self.deadline_s + HUNG_SLACK_S


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def _channel(target: str, credentials: grpc.ChannelCredentials | None) -> grpc.Channel:
    options = [("grpc.max_send_message_length", 64 * 1024 * 1024)]
    if credentials is None:
        return grpc.insecure_channel(target, options=options)
    return grpc.secure_channel(target, credentials, options=options)


def _one_call(
    stub: pb_grpc.ModerationStub,
    work: Work,
    client: int,
    request_id: str,
    deadline_s: float,
    metadata: tuple[tuple[str, str], ...],
) -> Outcome:
    request = pb.ModerateRequest()
    request.CopyFrom(work.request)
    request.request_id = request_id  # so the gateway's log lines can be matched to outcomes
    started = time.monotonic()
    try:
        verdict = stub.Moderate(request, timeout=deadline_s, metadata=metadata)
    except grpc.RpcError as error:
        retry_after = None
        for key, value in error.trailing_metadata() or ():  # type: ignore[attr-defined]
            if key == "retry-after-ms":
                with contextlib.suppress(ValueError):
                    retry_after = int(value)
        return Outcome(
            client,
            work.kind,
            request_id,
            started,
            time.monotonic(),
            error.code().name,  # type: ignore[attr-defined]
            deadline_s,
            retry_after_ms=retry_after,
            details=(error.details() or "")[:200],  # type: ignore[attr-defined]
        )
    return Outcome(
        client,
        work.kind,
        request_id,
        started,
        time.monotonic(),
        "OK",
        deadline_s,
        degraded=verdict.degraded,
        modalities={MODALITY_NAMES[m.modality]: STATE_NAMES[m.state] for m in verdict.modalities},
        reasons={MODALITY_NAMES[m.modality]: m.reason[:200] for m in verdict.modalities if m.reason},
    )


def run_load(
    target: str,
    works: Sequence[Work],
    *,
    clients: int = 8,
    duration_s: float = 60.0,
    deadline_s: float = 10.0,
    max_retry_wait_s: float = 2.0,
    credentials: grpc.ChannelCredentials | None = None,
    token: str | None = None,
    on_outcome: Callable[[Outcome], None] | None = None,
    until: threading.Event | None = None,
) -> list[Outcome]:
    """`clients` closed-loop callers for `duration_s` (or until `until` is set, if sooner);
    every call has `deadline_s`."""
    if not works:
        raise ValueError("give at least one kind of request")
    metadata: tuple[tuple[str, str], ...] = (("authorization", f"Bearer {token}"),) if token else ()
    outcomes: list[Outcome] = []
    lock = threading.Lock()
    end = time.monotonic() + duration_s

    def caller(index: int) -> None:
        with _channel(target, credentials) as channel:
            stub = pb_grpc.ModerationStub(channel)
            sent = 0
            while time.monotonic() < end and not (until is not None and until.is_set()):
                work = works[(index + sent) % len(works)]
                sent += 1
                outcome = _one_call(stub, work, index, f"load-{index}-{sent}", deadline_s, metadata)
                with lock:
                    outcomes.append(outcome)
                if on_outcome is not None:
                    on_outcome(outcome)
                if outcome.status == "RESOURCE_EXHAUSTED" and outcome.retry_after_ms is not None:
                    # Honour the server's hint (bounded: the run has an end).
                    time.sleep(
                        min(outcome.retry_after_ms / 1000, max_retry_wait_s, max(end - time.monotonic(), 0))
                    )
                elif outcome.status != "OK":
                    time.sleep(0.05)  # no busy loop against a failing server

    threads = [
        threading.Thread(target=caller, args=(i,), name=f"load-{i}", daemon=True) for i in range(clients)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        # Each caller finishes its last call at most one deadline after the end.
        thread.join(timeout=duration_s + deadline_s + HUNG_SLACK_S + 30)
    stuck = [t.name for t in threads if t.is_alive()]
    if stuck:
        raise RuntimeError(f"callers still waiting past every deadline: {stuck}")
    return sorted(outcomes, key=lambda o: o.started)


def summarize(outcomes: Sequence[Outcome], duration_s: float) -> dict[str, Any]:
    statuses = Counter(o.status for o in outcomes)
    ok = [o for o in outcomes if o.status == "OK"]
    shed = [o for o in outcomes if o.status == "RESOURCE_EXHAUSTED"]
    ms = lambda values: {  # noqa: E731
        f"p{q}": round(percentile(values, q) * 1000, 1) for q in (50, 95, 99)
    }
    by_kind = {}
    for kind in sorted({o.kind for o in outcomes}):
        mine = [o for o in ok if o.kind == kind]
        by_kind[kind] = {"ok": len(mine), "latency_ms": ms([o.latency_s for o in mine])}
    hints = [o.retry_after_ms for o in shed if o.retry_after_ms is not None]
    return {
        "requests": len(outcomes),
        "statuses": dict(statuses),
        "success_rate": round(len(ok) / len(outcomes), 4) if outcomes else 0.0,
        "answered_rate": round(
            sum(1 for o in outcomes if o.status == "OK" or o.status in RETRYABLE) / len(outcomes), 4
        )
        if outcomes
        else 0.0,
        "degraded": sum(1 for o in ok if o.degraded),
        "ok_per_s": round(len(ok) / duration_s, 2),
        "latency_ok_ms": ms([o.latency_s for o in ok]),
        "latency_all_ms": ms([o.latency_s for o in outcomes]),
        "by_kind": by_kind,
        "shed": {
            "count": len(shed),
            "with_retry_after": len(hints),
            "retry_after_ms": {"min": min(hints), "max": max(hints)} if hints else {},
            "latency_ms": ms([o.latency_s for o in shed]),
        },
        "modality_states": dict(
            sorted(Counter(f"{m}:{state}" for o in ok for m, state in o.modalities.items()).items())
        ),
        "hung": sum(1 for o in outcomes if o.hung),
        "max_latency_ms": round(max((o.latency_s for o in outcomes), default=0.0) * 1000, 1),
    }


# --- workloads ------------------------------------------------------------------------------------


def default_works(directory: Path) -> list[Work]:
    """Text-only requests and two small videos (spoken, 2-3 s), alternating."""
    from modgate.samples import Line, Subtitle, make_video

    videos = [
        make_video(directory / "hello.mp4", (Line(0.3, "hello everyone, welcome back"),), duration_s=2.5),
        make_video(
            directory / "quiet.mp4",
            subtitles=(Subtitle(0, 1500, "a quiet walk in the park"),),
            duration_s=2.0,
        ),
    ]
    texts = [
        pb.ModerateRequest(title="my cooking video", description="pasta with tomatoes", hashtags=["food"]),
        pb.ModerateRequest(title="game night", description="we crushed it in the second half"),
    ]
    works = []
    for video, text in zip(videos, texts, strict=True):
        works.append(Work("text", text))
        works.append(Work("video", pb.ModerateRequest(media=video.path.read_bytes(), title="clip")))
    return works


# --- faults ---------------------------------------------------------------------------------------


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
    from modgate.stack import DEFAULT_PORTS, port_in_use

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


# --- CLI ------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _local_stack(args: argparse.Namespace) -> Iterator[Any]:
    from modgate.stack import Stack, StackConfig

    home = Path(tempfile.mkdtemp(prefix="modgate-load-"))
    gateway_env = {
        "MODGATE_GATEWAY_MAX_INFLIGHT": str(args.max_inflight),
        "MODGATE_GATEWAY_MAX_QUEUED": "0",
        "MODGATE_GATEWAY_RETRY_AFTER_MS": "500",
        "MODGATE_GATEWAY_BREAKER_RESET_TIMEOUT_S": "1.0",
        # Time kept back to form and send a degraded verdict when a service hangs (default 25 ms
        # is too little when model restarts starve the CPU).
        "MODGATE_GATEWAY_DEADLINE_MARGIN_MS": "500",
    }
    config = StackConfig(
        ports=restartable_ports(),
        home=home,
        trace_store=False,
        env={"gateway": gateway_env},
    )
    stack = Stack(config)
    print(f"starting a local stack under {home} (models load once: ~1 min)", file=sys.stderr)
    stack.start(timeout_s=600, say=lambda line: print(f"  {line}", file=sys.stderr))
    try:
        yield stack
    finally:
        stack.stop()


def _print(summary: dict[str, Any], faults: list[FaultRecord]) -> None:
    lat = summary["latency_ok_ms"]
    print(
        f"requests {summary['requests']}  statuses {summary['statuses']}\n"
        f"success rate {summary['success_rate']:.1%}  answered (verdict or retryable) "
        f"{summary['answered_rate']:.1%}  degraded {summary['degraded']}  hung {summary['hung']}\n"
        f"OK latency p50 {lat['p50']} ms  p95 {lat['p95']} ms  p99 {lat['p99']} ms  "
        f"({summary['ok_per_s']} OK/s)\n"
        f"shed (RESOURCE_EXHAUSTED) {summary['shed']['count']}, with retry-after-ms "
        f"{summary['shed']['with_retry_after']} {summary['shed']['retry_after_ms']}, answered in "
        f"p95 {summary['shed']['latency_ms']['p95']} ms"
    )
    print(f"  modality states in verdicts: {summary['modality_states']}")
    for kind, figures in summary["by_kind"].items():
        print(f"  {kind:<6} OK {figures['ok']:<5} latency {figures['latency_ms']}")
    for fault in faults:
        rec = "never" if fault.recovery_s is None else f"{fault.recovery_s:.1f} s"
        print(
            f"  killed {fault.service:<6} restart->ready {fault.restart_to_ready_s:.1f} s, "
            f"restart->first served {rec}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", default="127.0.0.1:50051", help="gateway host:port")
    parser.add_argument("--start-stack", action="store_true", help="start a local stack on free ports")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds")
    parser.add_argument("--deadline", type=float, default=10.0, help="per-call deadline, seconds")
    parser.add_argument("--max-inflight", type=int, default=4, help="gateway slots (with --start-stack)")
    parser.add_argument("--kill-services", action="store_true", help="SIGKILL + restart each model service")
    parser.add_argument("--down", type=float, default=3.0, help="seconds a killed service stays down")
    parser.add_argument("--token", help="bearer token")
    parser.add_argument("--tls-ca", type=Path, help="CA bundle (PEM) to trust: makes the channel TLS")
    parser.add_argument("--json", type=Path, default=RESULTS / "load.json")
    args = parser.parse_args(argv)
    if args.kill_services and not args.start_stack:
        parser.error("--kill-services needs --start-stack (it restarts the services it kills)")
    credentials = grpc.ssl_channel_credentials(args.tls_ca.read_bytes()) if args.tls_ca else None

    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as exits:
        works = default_works(Path(tmp))
        target = args.target
        stack = None
        if args.start_stack:
            stack = exits.enter_context(_local_stack(args))
            target = stack.gateway_target
        faults: list[FaultRecord] = []
        stop = threading.Event()
        injector = None
        run_started = time.monotonic()
        if args.kill_services and stack is not None:

            def run_faults() -> None:
                try:
                    faults.extend(
                        inject_faults(
                            lambda s: stack.processes[s].kill(),
                            lambda s: stack.processes[s].start(),
                            lambda s: stack.processes[s].exited() is None and stack.processes[s].spec.ready(),
                            ("speech", "vision", "text"),
                            down_s=args.down,
                            gap_s=5.0,
                        )
                    )
                    # Keep the load on to see the last recovery, and for --duration at least.
                    time.sleep(max(10.0, run_started + args.duration - time.monotonic()))
                finally:
                    stop.set()

            injector = threading.Thread(target=run_faults, daemon=True)
            injector.start()
        print(f"load: {args.clients} clients for {args.duration:.0f} s against {target}", file=sys.stderr)
        started = time.monotonic()
        outcomes = run_load(
            target,
            works,
            clients=args.clients,
            # With faults, the load lasts until every service is back (--duration is a minimum).
            duration_s=args.duration if injector is None else 3600.0,
            deadline_s=args.deadline,
            credentials=credentials,
            token=args.token,
            until=None if injector is None else stop,
        )
        elapsed = time.monotonic() - started
        stop.set()
        if injector is not None:
            injector.join(timeout=600)
        recovery(faults, outcomes)
        summary = summarize(outcomes, elapsed)
        summary["config"] = {k: str(v) for k, v in vars(args).items()}
        summary["faults"] = [{**asdict(f), "recovery_s": f.recovery_s} for f in faults]
        _print(summary, faults)
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=2))
        print(f"wrote {args.json}", file=sys.stderr)
    return 0 if summary["hung"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
