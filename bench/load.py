"""Bounded load over the real gRPC API: success rate, statuses, latency, backpressure, faults.

    python -m bench.load --start-stack                       # own local stack on free ports
    python -m bench.load --target 127.0.0.1:50051 --clients 8 --duration 60
    python -m bench.load --start-stack --kill-services       # SIGKILL speech, vision, text in turn
    python -m bench.load --start-stack --neighbour           # the others with and without a noisy neighbour

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

With --neighbour the same normal callers (--normal: the usual mix, or single-title threats as
in issue 21) run twice, alone and beside one more caller (its own bearer token: with
--start-stack the stack gets a tokens file with both) sending the largest text requests the
gateway admits (--neighbour-chars, default the gateway's default
MAX_REQUEST_TEXT_UNITS x COST_CHARS_PER_UNIT = 50,000 characters as 2,000-character captions)
from --neighbour-clients connections; it prints the others' p95 latency and success rate (a
verdict with no FAILED or TIMED_OUT modality) in both runs and their ratio. The acceptance
criterion (issue 21): both within 20% of the run without the neighbour.

Prints a summary and writes bench/results/load.json (or --json PATH).

The callers and the fault injection are modgate.tools.load and modgate.tools.faults (the
reliability tests use them too); this module is the command on top.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import grpc

from gateway.auth import token_digest
from modgate.ports import GATEWAY_TARGET
from modgate.tools.faults import FaultRecord, inject_faults, recovery, restartable_ports
from modgate.tools.load import CallerGroup, Work, default_works, run_load, summarize
from modgate.tools.neighbour import CUE_CHARS, caption_request, compare, threat_works
from modgate.tools.stack import Stack, StackConfig

RESULTS = Path(__file__).resolve().parent / "results"
# Tokens of the two callers of a --neighbour run on a stack this command starts.
OTHERS_TOKEN = "bench-others-0123456789abcdef"
NEIGHBOUR_TOKEN = "bench-neighbour-0123456789abcdef"


@contextlib.contextmanager
def _local_stack(args: argparse.Namespace) -> Iterator[Stack]:
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
    if args.neighbour:
        tokens = home / "tokens.yaml"
        tokens.write_text(
            f"{token_digest(OTHERS_TOKEN)}: {{caller: others, policies: ['*']}}\n"
            f"{token_digest(NEIGHBOUR_TOKEN)}: {{caller: neighbour, policies: ['*']}}\n",
            encoding="utf-8",
        )
        gateway_env["MODGATE_GATEWAY_AUTH_TOKENS_FILE"] = str(tokens)
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
    parser.add_argument("--target", default=GATEWAY_TARGET, help="gateway host:port")
    parser.add_argument("--start-stack", action="store_true", help="start a local stack on free ports")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds")
    parser.add_argument("--deadline", type=float, default=10.0, help="per-call deadline, seconds")
    parser.add_argument("--max-inflight", type=int, default=4, help="gateway slots (with --start-stack)")
    parser.add_argument("--kill-services", action="store_true", help="SIGKILL + restart each model service")
    parser.add_argument("--down", type=float, default=3.0, help="seconds a killed service stays down")
    parser.add_argument("--token", help="bearer token")
    parser.add_argument("--tls-ca", type=Path, help="CA bundle (PEM) to trust: makes the channel TLS")
    parser.add_argument("--neighbour", action="store_true", help="the others with and without a neighbour")
    parser.add_argument("--neighbour-clients", type=int, default=2, help="the neighbour's connections")
    parser.add_argument("--neighbour-chars", type=int, default=50_000, help="text of each neighbour request")
    parser.add_argument("--neighbour-token", help="the neighbour's bearer token (with --target)")
    parser.add_argument(
        "--normal",
        choices=("mix", "titles"),
        default="mix",
        help="the others' requests with --neighbour: the usual text + small videos, or single-title threats",
    )
    parser.add_argument("--json", type=Path, default=RESULTS / "load.json")
    args = parser.parse_args(argv)
    if args.kill_services and not args.start_stack:
        parser.error("--kill-services needs --start-stack (it restarts the services it kills)")
    if args.kill_services and args.neighbour:
        parser.error("--neighbour and --kill-services are separate runs")
    credentials = grpc.ssl_channel_credentials(args.tls_ca.read_bytes()) if args.tls_ca else None
    if args.neighbour:
        return neighbour_run(args, credentials)

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


def neighbour_run(args: argparse.Namespace, credentials: grpc.ChannelCredentials | None) -> int:
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as exits:
        target, token, heavy_token = args.target, args.token, args.neighbour_token
        if args.start_stack:
            target = exits.enter_context(_local_stack(args)).gateway_target
            token, heavy_token = OTHERS_TOKEN, NEIGHBOUR_TOKEN
        works = default_works(Path(tmp)) if args.normal == "mix" else threat_works()
        normal = CallerGroup("others", works, args.clients, token, args.deadline)
        request = caption_request(max(1, args.neighbour_chars // CUE_CHARS))
        heavy = CallerGroup(
            "neighbour", [Work("text", request)], args.neighbour_clients, heavy_token, args.deadline
        )
        report = compare(
            target,
            normal,
            heavy,
            duration_s=args.duration,
            credentials=credentials,
            say=lambda line: print(line, file=sys.stderr),
        )
    report["config"] = {k: str(v) for k, v in vars(args).items()}
    for name in ("without_neighbour", "with_neighbour", "neighbour"):
        run = report[name]
        print(
            f"{name:<18} requests {run['requests']:<5} served {run['served_rate']:.1%}  "
            f"p95 {run['served_p95_ms']} ms  statuses {run['statuses']}"
        )
        for kind, figures in run["by_kind"].items():
            print(f"  {kind:<6} OK {figures['ok']:<5} latency {figures['latency_ms']}")
    print(
        f"the others beside the neighbour: p95 x{report['p95_ratio']}, success rate "
        f"x{report['served_ratio']} (acceptance: within 20%: p95 <= x1.2, success rate >= x0.8)"
    )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.json}", file=sys.stderr)
    ok = report["p95_ratio"] <= 1.2 and report["served_ratio"] >= 0.8
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
