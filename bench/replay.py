"""Policy replay's throughput: `python -m bench.replay [--count 10000] [--runs 3]`.

1. --count synthetic stored verdicts (gateway/replay/synthetic.py: random service scores,
   fused by the real fusion and stored as the ledger stores them) committed to a fresh SQLite
   verdict store in a temporary directory, in batches of 1,000.
2. `replay()` (gateway/replay, what `modgate replay` runs) over all of them under the default
   policy with a lower violence review threshold, --runs times in this process alone (what
   `modgate replay` does by default) and --runs times with --workers (default: one forked
   worker per CPU, at most 4), interleaved: wall time and CPU time (this process and its
   workers) per run; the figures are the median verdicts/s. Target: >= 2,000 verdicts/s.
3. Baseline, same invocation: the plain loop (VerdictStore.scan() decoding every fusion
   document with json.loads, then refuse() validating the dict), one run.

Prints a summary and writes bench/results/replay.json with the load average before and after:
on a shared machine, wall figures move with other work; verdicts per CPU second do much less.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.workloads import RESULTS
from gateway.fusion import NoVerdict
from gateway.orchestrator.record import RecordError, refuse
from gateway.replay import replay
from gateway.replay.synthetic import synthetic_records
from modgate.policy import Policy, load_policies, parse_policy
from modgate.store import StoreSettings, VerdictStore
from modgate.tools.replay_cmd import default_workers

TARGET_PER_S = 2000.0
BATCH = 1000


def say(line: str) -> None:
    print(f"bench.replay: {line}", file=sys.stderr, flush=True)


def candidate(policy: Policy) -> Policy:
    document = policy.model_dump(mode="json")
    document["version"] = f"{policy.version}-lower-violence"
    document["categories"]["violence"]["thresholds"]["review"] = 0.3
    return parse_policy(document)


def build(store: VerdictStore, policy: Policy, count: int, seed: int) -> float:
    started = time.perf_counter()
    batch = []
    for record in synthetic_records(policy, count, seed=seed):
        batch.append(record)
        if len(batch) == BATCH:
            store.commit_many(batch)
            batch = []
    if batch:
        store.commit_many(batch)
    return time.perf_counter() - started


def _cpu_s() -> float:
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def timed_replay(store: VerdictStore, policy: Policy, workers: int) -> dict[str, Any]:
    cpu = _cpu_s()
    report = replay(store, policy, workers=workers)
    cpu = _cpu_s() - cpu
    return {
        "workers": workers,
        "verdicts": report.scanned,
        "wall_s": round(report.seconds, 3),
        "cpu_s": round(cpu, 3),
        "per_s": round(report.verdicts_per_s, 1),
        "per_cpu_s": round(report.scanned / cpu, 1) if cpu > 0 else None,
        "changed": report.matrix.changed,
    }


def baseline(store: VerdictStore, policy: Policy) -> dict[str, Any]:
    """The loop without replay's read path: scan() (JSON decoded per row), refuse(dict)."""
    cpu, started, count = time.process_time(), time.perf_counter(), 0
    for record in store.scan():
        count += 1
        with contextlib.suppress(NoVerdict, RecordError):
            refuse(record.fusion, policy)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    return {"verdicts": count, "wall_s": round(wall, 3), "cpu_s": round(cpu, 3), "per_s": round(count / wall)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.replay", description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000, help="stored verdicts (default 10,000)")
    parser.add_argument("--runs", type=int, default=3, help="timed replays (default 3; the median is quoted)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--workers", type=int, default=0, help="workers of the second series (0: one per CPU, at most 4)"
    )
    parser.add_argument("--no-baseline", action="store_true", help="skip the plain-loop baseline run")
    args = parser.parse_args(argv)

    policy = load_policies()["default"]
    workers = args.workers or default_workers()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="modgate-bench-replay-") as tmp:
        store = VerdictStore.open(StoreSettings(url=f"sqlite:///{Path(tmp) / 'verdicts.db'}"))
        say(f"storing {args.count:,} synthetic verdicts ...")
        build_s = build(store, policy, args.count, args.seed)
        say(f"stored in {build_s:.1f} s ({args.count / build_s:,.0f}/s, fusion and commit)")
        runs: dict[int, list[dict[str, Any]]] = {1: [], workers: []}
        for i in range(args.runs):
            for count in runs:  # interleaved: both see the same drift in the machine's load
                run = timed_replay(store, candidate(policy), count)
                runs[count].append(run)
                rates = f"{run['per_s']:,.0f} verdicts/s ({run['per_cpu_s']:,.0f}/CPU s)"
                say(f"run {i + 1}, {count} worker(s): {rates}")
        plain = None if args.no_baseline else baseline(store, candidate(policy))
        store.close()
    medians = {count: statistics.median(r["per_s"] for r in done) for count, done in runs.items()}
    median = medians[1]
    median_cpu = statistics.median(r["per_cpu_s"] for r in runs[1] if r["per_cpu_s"])
    result = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "load_avg_before": [round(x, 2) for x in load_before],
            "load_avg_after": [round(x, 2) for x in os.getloadavg()],
        },
        "store": "sqlite (WAL)",
        "count": args.count,
        "build_s": round(build_s, 2),
        "workers_compared": workers,
        "runs": {str(count): done for count, done in runs.items()},
        "median_per_s": median,
        "median_per_s_workers": medians[workers],
        "median_per_cpu_s": median_cpu,
        "target_per_s": TARGET_PER_S,
        "meets_target": median >= TARGET_PER_S,
        "baseline": plain,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "replay.json"
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    lines = [
        f"replay of {args.count:,} stored verdicts (SQLite), median of {args.runs}, one process: "
        f"{median:,.0f} verdicts/s ({median_cpu:,.0f} per CPU second); target >= {TARGET_PER_S:,.0f}/s: "
        + ("met" if result["meets_target"] else "NOT met"),
        f"with --workers {workers}: {medians[workers]:,.0f} verdicts/s",
    ]
    if plain is not None:
        lines.append(
            f"baseline (scan() + json.loads + refuse(dict)): {plain['per_s']:,.0f} verdicts/s "
            f"({plain['verdicts'] / plain['cpu_s']:,.0f} per CPU second)"
        )
    machine = result["machine"]
    lines.append(f"load average before {machine['load_avg_before']}, after {machine['load_avg_after']}")
    lines.append(f"wrote {out}")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
