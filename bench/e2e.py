"""End-to-end figures through the real gRPC API of the real local stack.

    python -m bench.e2e [--quick] [--device cpu|cuda] [--reps N] [--concurrency 1,2,4,8]

The stack is started by `modgate.tools.stack.Stack`, the code behind `modgate up` (trace store,
speech/vision/text `bentoml serve`, `python -m gateway`), on free ports with a scratch
$MODGATE_HOME, and always stopped. Requests go through `modgate.client.ModerationClient`.

Measured:
  latency     sequential requests per workload after warm-up: wall time at the client
              (p50/p95) and each stage the gateway reports in Verdict.timings (split, speech,
              transcript_text, vision, text, fusion, queueing, validate)
  throughput  a fixed number of requests sent by 1/2/4/8 concurrent callers: requests/s,
              media seconds moderated per wall second, latency p50/p95, errors and degraded
              verdicts
  memory      peak RSS of every process of the stack (psutil, sampled every 0.2 s), and of
              each service's process group (BentoML supervisor + workers; gateway + split
              workers)

`python -m bench` runs this together with the naive baseline and writes the report; this
module alone prints its figures and writes bench/results/e2e.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from bench.workloads import RESULTS, Workload, workloads
from modgate.client import ModerationClient, ModerationError, Options
from modgate.ports import DEFAULT_PORTS
from modgate.tools.stack import Stack, StackConfig, free_port
from modgate.v1 import moderation_pb2 as pb

STAGES = (
    "queueing",
    "validate",
    "split_audio",
    "split",
    "speech",
    "transcript_text",
    "vision",
    "text",
    "fusion",
)
STATE_NAMES = {v: k.removeprefix("MODALITY_STATE_") for k, v in pb.ModalityState.items()}
MODALITY_NAMES = {v: k.removeprefix("MODALITY_") for k, v in pb.Modality.items()}
DECISION_NAMES = {v: k.removeprefix("DECISION_") for k, v in pb.Decision.items()}
Say = Callable[[str], None]


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (with few samples p95 is the slowest one: said in the report)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 100))))
    return ordered[rank - 1]


def summary(values: list[float]) -> dict[str, float]:
    return {
        "p50": round(statistics.median(values), 1),
        "p95": round(percentile(values, 95), 1),
        "min": round(min(values), 1),
        "max": round(max(values), 1),
        "n": len(values),
    }


# --- the stack ------------------------------------------------------------------------------


def stack_config(
    home: Path, *, device: str, trace_store: bool, env: dict[str, dict[str, str]]
) -> StackConfig:
    """Free ports, a scratch home, MODGATE_DEVICE for every model service, extra env per process."""
    ports = {name: free_port() for name in DEFAULT_PORTS}
    merged: dict[str, dict[str, str]] = {s: {"MODGATE_DEVICE": device} for s in ("speech", "vision", "text")}
    for name, values in env.items():
        merged.setdefault(name, {}).update(values)
    return StackConfig(ports=ports, home=home, trace_store=trace_store, env=merged)


def _role(proc: psutil.Process) -> str:
    """A short name for a member of a service's process group."""
    try:
        cmd = " ".join(proc.cmdline())
    except (psutil.Error, OSError):
        return "?"
    if "multiprocessing" in cmd:
        return "split-worker" if "spawn_main" in cmd else "mp-helper"
    if "_bentoml_impl.worker" in cmd:
        for marker in ("vision-encoder", "modgate-text", "speech", "vision", "text"):
            if f"--service-name {marker}" in cmd:
                return f"worker:{marker}"
        return "worker"
    if "bentoml serve" in cmd or "-m bentoml" in cmd:
        return "supervisor"
    return "main"


class RssSampler:
    """Samples RSS of every process of the stack in a thread; keeps the peaks."""

    def __init__(self, stack: Stack, interval_s: float = 0.2) -> None:
        self.stack = stack
        self.interval_s = interval_s
        self.peak_process: dict[str, float] = {}  # "speech/worker:speech" -> MB
        self.peak_group: dict[str, float] = {}  # "speech" -> MB, summed over the group at one instant
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._roles: dict[int, str] = {}

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def sample(self) -> None:
        for name, managed in self.stack.processes.items():
            total = 0.0
            for proc in managed.members():
                try:
                    rss = proc.memory_info().rss / 2**20
                except (psutil.Error, OSError):
                    continue
                role = self._roles.get(proc.pid) or self._roles.setdefault(proc.pid, _role(proc))
                key = f"{name}/{role}"
                self.peak_process[key] = max(self.peak_process.get(key, 0.0), rss)
                total += rss
            self.peak_group[name] = max(self.peak_group.get(name, 0.0), total)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sample()

    def result(self) -> dict[str, Any]:
        return {
            "peak_rss_mb_by_process": {k: round(v, 1) for k, v in sorted(self.peak_process.items())},
            "peak_rss_mb_by_service": {k: round(v, 1) for k, v in sorted(self.peak_group.items())},
        }


@contextlib.contextmanager
def running_stack(config: StackConfig, say: Say) -> Iterator[Stack]:
    stack = Stack(config)
    started = time.monotonic()
    stack.start(timeout_s=900, say=lambda line: say(f"  {line}"))
    say(f"stack ready in {time.monotonic() - started:.0f} s (gateway {stack.gateway_target})")
    try:
        yield stack
    finally:
        stack.stop()


# --- requests -------------------------------------------------------------------------------


@dataclass
class Sample:
    wall_ms: float
    timings: dict[str, float] = field(default_factory=dict)
    decision: str = ""
    degraded: bool = False
    frames: int = 0
    states: dict[str, str] = field(default_factory=dict)
    error: str = ""
    trace_id: str = ""


def moderate(client: ModerationClient, workload: Workload, data: bytes | None, options: Options) -> Sample:
    started = time.perf_counter()
    try:
        if data is None:
            verdict = client.moderate_text(options=options, **workload.request_fields())  # type: ignore[arg-type]
        else:
            verdict = client.moderate_bytes(data, options=options, **workload.request_fields())  # type: ignore[arg-type]
    except ModerationError as exc:
        return Sample(wall_ms=(time.perf_counter() - started) * 1000, error=f"{exc.code.name}: {exc.details}")
    wall_ms = (time.perf_counter() - started) * 1000
    return Sample(
        wall_ms=wall_ms,
        timings={t.stage: float(t.duration_ms) for t in verdict.timings},
        decision=DECISION_NAMES.get(verdict.decision, "?"),
        degraded=verdict.degraded,
        frames=verdict.media.frames_sampled,
        states={MODALITY_NAMES[m.modality]: STATE_NAMES[m.state] for m in verdict.modalities},
        trace_id=verdict.trace_id,
    )


def waterfall(trace_db: Path, trace_id: str, wait_s: float = 3.0) -> list[dict[str, Any]]:
    """The spans of one request (all processes), as offsets from its first span, in ms."""
    from modgate.tools.tracestore import TraceStore

    deadline = time.monotonic() + wait_s
    spans: list[Any] = []
    while time.monotonic() < deadline:  # exporters send in batches
        with TraceStore(trace_db) as store:
            spans = store.spans_for_trace(trace_id)
        if len({s.service_name for s in spans}) >= 4:
            break
        time.sleep(0.5)
    if not spans:
        return []
    origin = min(s.start_ns for s in spans)
    return [
        {
            "service": s.service_name,
            "span": s.name,
            "start_ms": round((s.start_ns - origin) / 1e6, 1),
            "duration_ms": round(s.duration_ms, 1),
        }
        for s in sorted(spans, key=lambda s: s.start_ns)
    ]


def latency(
    target: str,
    workload: Workload,
    *,
    reps: int,
    warmup: int,
    options: Options,
    say: Say,
    trace_db: Path | None = None,
) -> dict[str, Any]:
    data = workload.path.read_bytes() if workload.path else None
    samples: list[Sample] = []
    with ModerationClient(target, timeout_s=300) as client:
        for i in range(warmup + reps):
            sample = moderate(client, workload, data, options)
            if sample.error:
                raise RuntimeError(f"{workload.name}: request failed: {sample.error}")
            if i >= warmup:
                samples.append(sample)
    walls = [s.wall_ms for s in samples]
    stages: dict[str, dict[str, float]] = {}
    for stage in STAGES:
        values = [s.timings[stage] for s in samples if stage in s.timings]
        if values:
            stages[stage] = summary(values)
    last = samples[-1]
    result = {
        "workload": workload.name,
        "duration_s": workload.duration_s,
        "options": {"frame_sample_fps": options.frame_sample_fps, "max_frames": options.max_frames},
        "wall_ms": summary(walls),
        "wall_ms_runs": [round(w, 1) for w in walls],
        "stages_ms": stages,
        "rtf_p50": (
            round(statistics.median(walls) / 1000 / workload.duration_s, 4) if workload.duration_s else None
        ),
        "decision": last.decision,
        "degraded": last.degraded,
        "frames_sampled": last.frames,
        "modalities": last.states,
        # Where the last request's time went, process by process (with the trace store on).
        "trace": waterfall(trace_db, last.trace_id) if trace_db and last.trace_id else [],
    }
    say(
        f"{workload.name}: p50 {result['wall_ms']['p50']:.0f} ms, p95 {result['wall_ms']['p95']:.0f} ms "
        f"({reps} runs; " + ", ".join(f"{k} {v['p50']:.0f}" for k, v in stages.items()) + ")"
    )
    return result


def throughput(
    target: str, workload: Workload, *, concurrency: int, requests: int, options: Options
) -> dict[str, Any]:
    data = workload.path.read_bytes() if workload.path else None
    counter = iter(range(requests))
    lock = threading.Lock()
    samples: list[Sample] = []

    def caller() -> None:
        with ModerationClient(target, timeout_s=600) as client:
            while True:
                with lock:
                    if next(counter, None) is None:
                        return
                sample = moderate(client, workload, data, options)
                with lock:
                    samples.append(sample)

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        for future in [pool.submit(caller) for _ in range(concurrency)]:
            future.result()
    wall_s = time.perf_counter() - started
    ok = [s for s in samples if not s.error]
    walls = [s.wall_ms for s in ok]
    queue = [s.timings.get("queueing", 0.0) for s in ok]
    return {
        "workload": workload.name,
        "concurrency": concurrency,
        "requests": requests,
        "wall_s": round(wall_s, 2),
        "requests_per_s": round(len(ok) / wall_s, 3),
        "media_s_per_s": round(len(ok) * workload.duration_s / wall_s, 2),
        "latency_ms": summary(walls) if walls else {},
        "queueing_ms_p50": round(statistics.median(queue), 1) if queue else None,
        "errors": [s.error for s in samples if s.error],
        "degraded": sum(1 for s in ok if s.degraded and _degraded_beyond_visual(s)),
        "degraded_states": sorted(
            {
                f"{m}:{st}"
                for s in ok
                for m, st in s.states.items()
                if st not in ("OK", "SKIPPED", "UNCALIBRATED")
            }
        ),
    }


def _degraded_beyond_visual(sample: Sample) -> bool:
    """Degraded for a reason other than VISUAL running uncalibrated (always so without CLIP weights)."""
    return any(state not in ("OK", "SKIPPED", "UNCALIBRATED") for state in sample.states.values())


# --- one run --------------------------------------------------------------------------------


@dataclass
class E2EPlan:
    workloads: list[Workload]
    reps: dict[str, int]  # per workload name
    warmup: int = 1
    concurrency: tuple[int, ...] = (1, 2, 4, 8)
    throughput_workload: str = "clip-10s"
    throughput_requests: Callable[[int], int] = lambda c: max(4, 2 * c)
    options: Options = field(default_factory=Options)
    # Extra latency rows: (label, workload name, options), e.g. the 60 s clip at 1 fps.
    variants: list[tuple[str, str, Options]] = field(default_factory=list)


def run_e2e(plan: E2EPlan, config: StackConfig, say: Say) -> dict[str, Any]:
    by_name = {w.name: w for w in plan.workloads}
    with running_stack(config, say) as stack, RssSampler(stack) as rss:
        target = stack.gateway_target
        trace_db = stack.home / "traces.db" if config.trace_store else None
        rows = []
        for workload in plan.workloads:
            rows.append(
                latency(
                    target,
                    workload,
                    reps=plan.reps.get(workload.name, 5),
                    warmup=plan.warmup,
                    options=plan.options,
                    say=say,
                    trace_db=trace_db,
                )
            )
        for label, name, options in plan.variants:
            if name in by_name:
                row = latency(
                    target,
                    by_name[name],
                    reps=plan.reps.get(name, 5),
                    warmup=0,
                    options=options,
                    say=say,
                    trace_db=trace_db,
                )
                row["workload"] = f"{name} ({label})"
                rows.append(row)
        scaling = []
        work = by_name.get(plan.throughput_workload)
        if work is not None:
            for c in plan.concurrency:
                point = throughput(
                    target, work, concurrency=c, requests=plan.throughput_requests(c), options=plan.options
                )
                scaling.append(point)
                say(
                    f"throughput {work.name} x{c}: {point['requests_per_s']:.2f} req/s, "
                    f"{point['media_s_per_s']:.1f} media-s/s, "
                    f"p50 {point['latency_ms'].get('p50', 0):.0f} ms, "
                    f"errors {len(point['errors'])}, degraded {point['degraded']}"
                )
        rss.sample()
        memory = rss.result()
    return {"latency": rows, "throughput": scaling, "memory": memory}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.e2e", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--concurrency", default="1,2,4,8")
    parser.add_argument("--no-trace-store", action="store_true")
    args = parser.parse_args(argv)

    def say(line: str) -> None:
        print(f"bench: {line}", file=sys.stderr, flush=True)

    found = workloads(quick=args.quick)
    plan = E2EPlan(
        workloads=found,
        reps={w.name: args.reps for w in found},
        concurrency=tuple(int(c) for c in args.concurrency.split(",") if c.strip()),
    )
    with tempfile.TemporaryDirectory(prefix="modgate-bench-") as home:
        config = stack_config(Path(home), device=args.device, trace_store=not args.no_trace_store, env={})
        result = run_e2e(plan, config, say)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "e2e.json"
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    say(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
