"""The whole benchmark in one command: `python -m bench` (what `make bench` runs).

    python -m bench                 # 10 s + 60 s clips + text only, naive baseline, concurrency 1/2/4/8
    python -m bench --quick         # 10 s clip + text only, fewer runs (a couple of minutes)
    python -m bench --device cuda   # services and the naive script on the GPU (MODGATE_DEVICE=cuda)

Steps, all in this invocation so the comparison is on the same machine at the same time:
1. build or find the workloads (bench/workloads.py; cached clips);
2. run the naive baseline on each clip (bench/naive.py, a subprocess; half its runs before the
   stack is up, half after it is stopped, so both see the same machine load);
3. start the real local stack (modgate.tools.stack, the code behind `modgate up`) and measure latency,
   stage breakdown, throughput at 1/2/4/8 concurrent callers and peak RSS (bench/e2e.py);
4. write bench/results/bench.json, bench.md and latency_breakdown.png, print the table and the
   speed-up over the naive baseline.

Other work on the machine inflates every figure: the report records the load average before and
after. `--env speech:MODGATE_SPEECH_THREADS=1` (repeatable) overrides one process's environment
for experiments; `--label NAME` writes bench-NAME.* instead of overwriting the main report.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import report
from bench.e2e import E2EPlan, run_e2e, stack_config
from bench.workloads import RESULTS, Workload, workloads
from modgate.client import Options
from modgate.tools.stack import Stack

ROOT = Path(__file__).resolve().parent.parent
# Environment keys worth recording: what decides how many cores each process uses.
SETTING_KEYS = ("THREADS", "OMP_", "MKL_", "KMP_", "DEVICE", "SPLIT_WORKERS", "FRAME", "MAX_FRAMES", "BF16")


def say(line: str) -> None:
    print(f"bench: {line}", file=sys.stderr, flush=True)


def parse_env(values: list[str]) -> dict[str, dict[str, str]]:
    env: dict[str, dict[str, str]] = {}
    for item in values:
        process, sep, assignment = item.partition(":")
        key, eq, value = assignment.partition("=")
        if not sep or not eq or not key:
            raise SystemExit(f"--env {item!r}: use PROCESS:KEY=VALUE, e.g. speech:MODGATE_SPEECH_THREADS=1")
        env.setdefault(process, {})[key] = value
    return env


def run_naive(workload: Workload, *, reps: int, device: str, out_dir: Path) -> dict[str, Any]:
    assert workload.path is not None
    out = out_dir / f"naive-{workload.name}.json"
    texts = [workload.title, workload.description, " ".join(f"#{h}" for h in workload.hashtags)]
    argv = [sys.executable, "-m", "bench.naive", "--clip", str(workload.path), "--reps", str(reps)]
    argv += ["--device", device, "--json", str(out)]
    for text in texts:
        if text:
            argv += ["--text", text]
    say(f"naive baseline on {workload.name} ({reps} run(s)) ...")
    started = time.monotonic()
    subprocess.run(argv, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    result = json.loads(out.read_text(encoding="utf-8"))
    med = result["median_s"]
    say(
        f"naive {workload.name}: total {med['total']:.2f} s (decode {med['decode']:.2f}, "
        f"speech {med['speech']:.2f}, vision {med['vision']:.2f}, text {med['text']:.2f}) "
        f"in {time.monotonic() - started:.0f} s incl. model load"
    )
    return result


def pooled(first: dict[str, Any], second: dict[str, Any]) -> dict[str, Any]:
    """Two naive results for the same clip as one: all runs, medians over all of them."""
    runs = [*first["runs"], *second["runs"]]
    stages = runs[0]["timings_s"].keys()
    return {
        **first,
        "reps": len(runs),
        "runs": runs,
        "median_s": {k: round(statistics.median(r["timings_s"][k] for r in runs), 3) for k in stages},
        "peak_rss_mb": max(first["peak_rss_mb"], second["peak_rss_mb"]),
        "load_s": max(first["load_s"], second["load_s"]),
        "load_avg_1m": [first["load_avg_1m"], second["load_avg_1m"]],
    }


def commit() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True, text=True
        ).stdout
        return head + ("+dirty" if dirty.strip() else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def stack_settings(stack: Stack) -> dict[str, dict[str, str]]:
    """The core-sharing settings each process gets (from the stack's thread plan plus --env)."""
    from gateway.config import GatewayConfig

    settings: dict[str, dict[str, str]] = {}
    for name, proc in stack.processes.items():
        picked = {k: v for k, v in proc.spec.env.items() if any(m in k for m in SETTING_KEYS)}
        if picked:
            settings[name] = picked
    gateway = GatewayConfig(_env_file=None)  # type: ignore[call-arg]
    gateway_env = settings.get("gateway", {})
    overrides = {k.removeprefix("MODGATE_GATEWAY_").lower(): v for k, v in gateway_env.items()}
    fields = (
        "frame_strategy",
        "frame_sample_fps",
        "default_max_frames",
        "max_frames",
        "keyframe_snap",
        "split_audio_first",
        "split_workers",
        "decode_threads",
    )
    settings["gateway defaults"] = {f: str(overrides.get(f, getattr(gateway, f))) for f in fields}
    return settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 s clip only, fewer runs")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="MODGATE_DEVICE everywhere")
    parser.add_argument("--reps", type=int, help="timed requests per workload (default 7, quick 3)")
    parser.add_argument("--naive-reps", type=int, help="naive runs per clip (default 4, quick 1)")
    parser.add_argument("--skip-naive", action="store_true")
    parser.add_argument("--concurrency", default="1,2,4,8", help="callers for the throughput runs")
    parser.add_argument("--no-throughput", action="store_true")
    parser.add_argument("--no-trace-store", action="store_true", help="run the stack without the trace store")
    parser.add_argument("--long-gop", action="store_true", help="also 60 s with x264's GOP 250")
    parser.add_argument("--fps", type=float, default=0.0, help="request frame_sample_fps (0: default)")
    parser.add_argument("--max-frames", type=int, default=0, help="request max_frames (0: gateway default)")
    parser.add_argument("--env", action="append", default=[], metavar="PROC:KEY=VALUE")
    parser.add_argument("--label", default="", help="write bench-LABEL.* instead of bench.*")
    args = parser.parse_args(argv)

    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise SystemExit(
                "bench: --device cuda, but torch sees no CUDA device here; run it on a GPU machine "
                "(the services get MODGATE_DEVICE=cuda) or use --device cpu"
            )
    env = parse_env(args.env)
    found = workloads(quick=args.quick, long_gop=args.long_gop)
    reps = args.reps or (3 if args.quick else 7)
    naive_reps = args.naive_reps or (1 if args.quick else 4)
    callers = [int(c) for c in args.concurrency.split(",") if c.strip()]
    concurrency = () if args.no_throughput else tuple(callers)
    options = Options(frame_sample_fps=args.fps, max_frames=args.max_frames)
    variants = []
    if not args.quick and not (args.fps or args.max_frames):
        # The naive script scores one frame per second: the stack doing that same work too.
        variants.append(("1 fps, as naive", "clip-60s", Options(frame_sample_fps=1.0, max_frames=64)))
    plan = E2EPlan(
        workloads=found,
        # The 60 s clip costs 6x the 10 s one: two runs fewer.
        reps={w.name: reps if w.duration_s <= 10 else max(3, reps - 2) for w in found},
        concurrency=concurrency,
        throughput_requests=(lambda c: c) if args.quick else (lambda c: max(4, 2 * c)),
        options=options,
        variants=variants,
    )
    load_before = os.getloadavg()[0]
    started = time.monotonic()
    naive: dict[str, Any] = {}
    baseline = [] if args.skip_naive else [w for w in found if w.name in ("clip-10s", "clip-60s")]
    # Half the naive runs before the stack's, half after: the machine's load drifts (other
    # work), and the ratio should compare the two at the same load, not at two moments.
    before_reps = (naive_reps + 1) // 2
    with tempfile.TemporaryDirectory(prefix="modgate-bench-") as tmp:
        for workload in baseline:
            naive[workload.name] = run_naive(
                workload, reps=before_reps, device=args.device, out_dir=Path(tmp)
            )
        config = stack_config(
            Path(tmp) / "home", device=args.device, trace_store=not args.no_trace_store, env=env
        )
        settings = stack_settings(Stack(config))
        say("starting the local stack (modgate.tools.stack, as `modgate up`) ...")
        e2e = run_e2e(plan, config, say)
        if naive_reps > before_reps:
            for workload in baseline:
                later = run_naive(
                    workload, reps=naive_reps - before_reps, device=args.device, out_dir=Path(tmp)
                )
                naive[workload.name] = pooled(naive[workload.name], later)
    meta = {
        "when": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "commit": commit(),
        "cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu_model": cpu_model(),
        "platform": platform.platform(),
        "device": args.device,
        "mode": "quick" if args.quick else "full",
        "load_before": load_before,
        "load_after": os.getloadavg()[0],
        "elapsed_s": round(time.monotonic() - started),
        "trace_store": not args.no_trace_store,
        "request_options": {"frame_sample_fps": args.fps, "max_frames": args.max_frames},
        "stack_settings": settings,
        "env_overrides": env,
    }
    result = {
        "meta": meta,
        "workloads": {w.name: w.describe() for w in found},
        "naive": naive,
        "e2e": e2e,
    }
    stem = f"bench-{args.label}" if args.label else "bench"
    RESULTS.mkdir(parents=True, exist_ok=True)
    json_path = RESULTS / f"{stem}.json"
    md_path = RESULTS / f"{stem}.md"
    png_path = RESULTS / ("latency_breakdown.png" if not args.label else f"{stem}-latency_breakdown.png")
    json_path.write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
    text = report.markdown(result)
    md_path.write_text(text, encoding="utf-8")
    report.chart(result, png_path)
    print(text)
    for name, ratio in report.speedups(result).items():
        print(f"{name}: modgate p50 is {ratio:.1f}x faster than the naive baseline")
    say(f"wrote {json_path}, {md_path}, {png_path} ({meta['elapsed_s']} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
