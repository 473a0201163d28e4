"""What each performance lever is worth end to end: `python -m bench.levers [--reps N] [--quick]`.

Starts the real local stack (as `python -m bench` does) once per configuration, in this one
invocation, and measures the 60 s clip's latency (p50 over --reps after a warm-up):

  before      every lever off: exact-time frame sampling, fp32 CLIP, each model library at
              its own default thread count (one thread per core in every service), 1 fps up to
              64 frames (faster-whisper int8 + VAD stay: bench/speech.py compares engines)
  after       the defaults
  after - X   the defaults with lever X turned back off, one at a time

so the table shows both the total gain and what each lever contributes at the final operating
point. Levers are switched through the same environment variables a deployment would use
(MODGATE_GATEWAY_KEYFRAME_SNAP, MODGATE_VISION_PRECISION, *_THREADS,
MODGATE_GATEWAY_DEFAULT_MAX_FRAMES, MODGATE_GATEWAY_SPLIT_AUDIO_FIRST).
Component figures (CPU seconds per split strategy, per CLIP precision, per Whisper engine) are
in bench/split.py, bench/vision.py and bench/speech.py.
Writes bench/results/levers.json and levers.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.e2e import E2EPlan, run_e2e, stack_config
from bench.workloads import RESULTS, clip

# Each lever: the environment that turns it OFF (the defaults turn it on).
LEVERS: dict[str, dict[str, dict[str, str]]] = {
    "keyframe snap": {"gateway": {"MODGATE_GATEWAY_KEYFRAME_SNAP": "0"}},
    "bf16 CLIP": {"vision": {"MODGATE_VISION_PRECISION": "fp32"}},
    "thread plan": {
        "speech": {"MODGATE_SPEECH_THREADS": "2", "OMP_NUM_THREADS": "2"},
        "vision": {"MODGATE_VISION_THREADS": "2", "OMP_NUM_THREADS": "2"},
        "text": {"MODGATE_TEXT_THREADS": "2", "OMP_NUM_THREADS": "2"},
    },
    "32 frames by default": {"gateway": {"MODGATE_GATEWAY_DEFAULT_MAX_FRAMES": "64"}},
    "audio first": {"gateway": {"MODGATE_GATEWAY_SPLIT_AUDIO_FIRST": "false"}},
    # Off: one chunk at a time on both threads (CTranslate2 intra-op threading).
    "parallel speech chunks": {"speech": {"MODGATE_SPEECH_CHUNK_WORKERS": "1"}},
}


def merged(*parts: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for part in parts:
        for process, env in part.items():
            out.setdefault(process, {}).update(env)
    return out


def say(line: str) -> None:
    print(f"bench.levers: {line}", file=sys.stderr, flush=True)


def measure(name: str, env: dict[str, dict[str, str]], duration_s: float, reps: int) -> dict[str, Any]:
    workload = clip(duration_s)
    plan = E2EPlan(workloads=[workload], reps={workload.name: reps}, concurrency=())
    say(f"{name}: starting the stack ({json.dumps(env) if env else 'defaults'})")
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="modgate-levers-") as home:
        config = stack_config(Path(home), device="cpu", trace_store=True, env=env)
        result = run_e2e(plan, config, lambda line: say(f"  {line}"))
    row = result["latency"][0]
    return {
        "config": name,
        "env": env,
        "p50_ms": row["wall_ms"]["p50"],
        "p95_ms": row["wall_ms"]["p95"],
        "runs_ms": row["wall_ms_runs"],
        "stages_ms": {k: v["p50"] for k, v in row["stages_ms"].items()},
        "frames": row["frames_sampled"],
        "trace": row["trace"],
        "load_before": round(load, 2),
        "load_after": round(os.getloadavg()[0], 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.levers", description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="the 10 s clip instead of the 60 s one")
    parser.add_argument("--only", default="", help="comma-separated configs (before,after,'after - X')")
    parser.add_argument(
        "--config",
        action="append",
        default=[],
        metavar="NAME=PROC:KEY=VALUE[;PROC:KEY=VALUE...]",
        help="an extra configuration: the defaults plus this environment (repeatable)",
    )
    args = parser.parse_args(argv)
    duration = 10.0 if args.quick else 60.0
    configs: list[tuple[str, dict[str, dict[str, str]]]] = [
        ("before", merged(*LEVERS.values())),
        ("after", {}),
        *((f"after - {lever}", env) for lever, env in LEVERS.items()),
    ]
    for item in args.config:
        name, _, assignments = item.partition("=")
        env: dict[str, dict[str, str]] = {}
        for assignment in filter(None, assignments.split(";")):
            process, _, pair = assignment.partition(":")
            key, _, value = pair.partition("=")
            env.setdefault(process.strip(), {})[key.strip()] = value.strip()
        configs.append((name.strip(), env))
    if args.only:
        wanted = {c.strip() for c in args.only.split(",")}
        configs = [c for c in configs if c[0] in wanted]
    started = time.monotonic()
    rows = [measure(name, env, duration, args.reps) for name, env in configs]
    after = next((r for r in rows if r["config"] == "after"), None)
    lines = [
        f"# Levers, {duration:g} s clip, p50 of {args.reps} (after a warm-up), {os.cpu_count()} CPUs",
        "",
        "| config | p50 s | p95 s | vs after | split | speech | vision | text | frames | load |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        st = row["stages_ms"]
        ratio = f"{row['p50_ms'] / after['p50_ms']:.2f}x" if after else "–"
        lines.append(
            f"| {row['config']} | {row['p50_ms'] / 1000:.2f} | {row['p95_ms'] / 1000:.2f} | {ratio} | "
            + " | ".join(f"{st.get(s, 0) / 1000:.2f}" for s in ("split", "speech", "vision", "text"))
            + f" | {row['frames']} | {row['load_before']:.1f} |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / ("levers-quick" if args.quick else "levers")
    out.with_suffix(".json").write_text(
        json.dumps({"duration_s": duration, "reps": args.reps, "rows": rows}, indent=2) + "\n",
        encoding="utf-8",
    )
    out.with_suffix(".md").write_text(text, encoding="utf-8")
    say(f"wrote {out}.json and .md in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
