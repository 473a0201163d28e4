"""End-to-end latency with tracing on vs. off: `python -m bench.tracing [--requests N]`.

Starts one real local stack (gateway + speech/vision/text [+ trace store]) per mode, all at
once, then sends the same short clip (speech, subtitles, a title) N times to each, rotating
across the stacks request by request so background load on a shared machine hits every mode
alike, and reports medians. Modes (each its own stack, started in this invocation):
  off   MODGATE_TRACING_ENABLED=false in every process: no SDK, no interceptors, no spans
  on    every process exports to the local trace store (what `modgate up` does)
  down  tracing on, but the exporter points at a closed port (collector down)
Prints a table and writes bench/results/tracing.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import psutil

from modgate.client import ModerationClient
from modgate.ports import DEFAULT_PORTS
from modgate.tools.stack import Stack, StackConfig, free_port
from modgate.tools.tracestore import TraceStore

RESULTS = Path(__file__).resolve().parent / "results"
PROCESSES = ("speech", "vision", "text", "gateway")


def make_clip(directory: Path) -> Path:
    from modgate.tools.mediagen import Cue, MediaSpec, Speech, generate

    spec = MediaSpec(
        duration_s=4.0,
        speech=(Speech(0.5, "I will find you and hurt you"),),
        subtitles=(Cue(0, 2000, "hello everyone"),),
    )
    return generate(spec, directory / "bench-clip.mp4").path


def stack_config(mode: str, home: Path) -> StackConfig:
    env: dict[str, dict[str, str]] = {}
    if mode == "off":
        env = {name: {"MODGATE_TRACING_ENABLED": "false"} for name in PROCESSES}
    elif mode == "down":
        closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there
        env = {name: {"OTEL_EXPORTER_OTLP_ENDPOINT": closed} for name in PROCESSES}
    ports = {name: free_port() for name in DEFAULT_PORTS}
    return StackConfig(ports=ports, home=home, trace_store=mode == "on", env=env)


def stack_cpu_s(stack: Stack) -> float:
    """User + system CPU seconds used so far by every live process of the stack."""
    total = 0.0
    for pid in stack.pids():
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            times = psutil.Process(pid).cpu_times()
            total += times.user + times.system
    return total


def run_interleaved(
    modes: list[str], clip: Path, requests: int, warmup: int, workdir: Path, verbose: bool = False
) -> list[dict[str, Any]]:
    """All stacks up at once; requests rotate across modes so background load hits each alike."""
    stacks: dict[str, Stack] = {}
    startup_s: dict[str, float] = {}
    latencies: dict[str, list[float]] = {m: [] for m in modes}
    trace_ids: dict[str, list[str]] = {m: [] for m in modes}
    data = clip.read_bytes()
    try:
        for mode in modes:
            print(f"mode {mode}: starting its stack", file=sys.stderr)
            stack = Stack(stack_config(mode, workdir / mode))
            stacks[mode] = stack
            say = (lambda line, m=mode: print(f"  [{m}] {line}", file=sys.stderr)) if verbose else None
            started = time.monotonic()
            stack.start(timeout_s=900, say=say)
            startup_s[mode] = time.monotonic() - started
        clients = {m: ModerationClient(stacks[m].gateway_target, timeout_s=120) for m in modes}
        cpu_start: dict[str, float] = {}
        try:
            for i in range(warmup + requests):
                if i == warmup:
                    cpu_start = {m: stack_cpu_s(stacks[m]) for m in modes}
                order = modes[i % len(modes) :] + modes[: i % len(modes)]  # rotate who goes first
                for mode in order:
                    t0 = time.perf_counter()
                    verdict = clients[mode].moderate_bytes(data, title="benchmark clip", content_id=f"b{i}")
                    elapsed_ms = (time.perf_counter() - t0) * 1000
                    if i >= warmup:
                        latencies[mode].append(elapsed_ms)
                        trace_ids[mode].append(verdict.trace_id)
        finally:
            for client in clients.values():
                client.close()
        time.sleep(1.0)  # let exporters send their last batch: its CPU counts too
        cpu_per_request_ms = {m: (stack_cpu_s(stacks[m]) - cpu_start[m]) / requests * 1000 for m in modes}
        spans = 0
        if "on" in modes:
            time.sleep(2.0)  # exporters batch
            with TraceStore(workdir / "on" / "traces.db") as store:
                spans = len(store.spans_for_trace(trace_ids["on"][-1]))
    finally:
        for stack in stacks.values():
            stack.stop()
    results = []
    for mode in modes:
        values = sorted(latencies[mode])
        results.append(
            {
                "mode": mode,
                "requests": requests,
                "p50_ms": statistics.median(values),
                "p90_ms": values[min(len(values) - 1, int(0.9 * len(values)))],
                "mean_ms": statistics.fmean(values),
                "min_ms": values[0],
                # CPU seconds of every process of the stack (trace store included) per request:
                # steadier than wall time on a shared machine.
                "cpu_ms_per_request": cpu_per_request_ms[mode],
                "startup_s": startup_s[mode],
                "trace_ids_returned": sum(1 for t in trace_ids[mode] if t),
                "spans_in_last_trace": spans if mode == "on" else 0,
            }
        )
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.tracing", description=__doc__)
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--modes", default="off,on,down", help="comma-separated: off,on,down")
    parser.add_argument("-v", action="store_true", help="show stack start-up lines")
    args = parser.parse_args(argv)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    # Kept after the run (git-ignored): the stacks' logs and the "on" trace database.
    workdir = RESULTS / "tracing-work"
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    clip = make_clip(workdir)
    load_before = os.getloadavg()[0]
    results = run_interleaved(modes, clip, args.requests, args.warmup, workdir, args.v)
    load_after = os.getloadavg()[0]
    print(
        f"{'mode':<6} {'p50 ms':>9} {'p90 ms':>9} {'mean ms':>9} {'min ms':>9} {'CPU ms/req':>11}"
        "  trace ids  spans/trace"
    )
    for r in results:
        print(
            f"{r['mode']:<6} {r['p50_ms']:9.1f} {r['p90_ms']:9.1f} {r['mean_ms']:9.1f} {r['min_ms']:9.1f}"
            f" {r['cpu_ms_per_request']:11.1f}  {r['trace_ids_returned']:>3}/{r['requests']:<5}"
            f"  {r['spans_in_last_trace']}"
        )
    by_mode = {r["mode"]: r for r in results}
    if "on" in by_mode and "off" in by_mode:
        delta = by_mode["on"]["p50_ms"] - by_mode["off"]["p50_ms"]
        print(f"tracing on vs off: p50 {delta:+.1f} ms ({delta / by_mode['off']['p50_ms'] * 100:+.1f} %)")
        cpu = by_mode["on"]["cpu_ms_per_request"] - by_mode["off"]["cpu_ms_per_request"]
        print(f"tracing on vs off: CPU per request {cpu:+.1f} ms (all processes of the stack)")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "tracing.json"
    out.write_text(
        json.dumps(
            {
                "machine": platform.platform(),
                "cpus": _cpus(),
                "loadavg_1m_before_after": [load_before, load_after],
                "results": results,
                "created": time.time(),
            },
            indent=2,
        )
    )
    print(f"load average (1 min) before/after: {load_before:.1f} / {load_after:.1f} on {_cpus()} CPUs")
    print(f"wrote {out}")
    return 0


def _cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 0)


if __name__ == "__main__":
    sys.exit(main())
