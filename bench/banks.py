"""Hash banks at scale: `python -m bench.banks [--entries N] [--runs N]`.

1. Generates a ThreatExchange dataset CSV of N (default 1,000,000) PDQ hashes: random 256-bit
   codes, a fifth of them near-duplicates (3-15 bits off) of others, as frames of the same
   video are; cached under bench/results/cache/.
2. Imports it with the real CLI (`python -m modgate.tools.cli bank import`): wall time and the
   importing process's peak RSS.
3. Loads the bank as the vision service does (BankMatcher, PDQ only): load time, the index's
   own bytes, and the RSS the load added to this process.
4. Times a 32-frame lookup (BankMatcher.match_pdq at distance 31, 16 frames within 0-31 bits of
   banked codes and 16 unbanked ones) over --runs runs: p50/p95 wall and CPU, and checks that
   every planted frame was found. Target: p50 <= 10 ms.
5. Baselines on the same codes, same invocation: faiss IndexBinaryFlat.range_search (what
   threatexchange's PDQIndex2 does) and faiss IndexBinaryMultiHash (HMA's PDQMultiHashIndex
   configuration: 16 tables of 16 bits, nflip 1).

Prints a summary and writes bench/results/banks.json with the machine's load average before
and after (other work on a shared machine inflates every figure: quote the CPU times too).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import psutil

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
CACHE = Path(os.environ.get("MODGATE_BENCH_CACHE", RESULTS / "cache"))
QUERY_FRAMES = 32


def generate_codes(count: int, seed: int = 14) -> np.ndarray:
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 256, (count, 32), dtype=np.uint8)
    near = rng.choice(count, size=count // 5, replace=False)
    parents = rng.integers(0, count, size=len(near))
    codes[near] = codes[parents]
    for flips in range(3, 16):
        picked = near[(np.arange(len(near)) % 13) == flips - 3]
        bits = rng.integers(0, 256, size=(len(picked), flips))
        for column in range(flips):
            codes[picked, bits[:, column] // 8] ^= (1 << (bits[:, column] % 8)).astype(np.uint8)
    return codes


def write_list(path: Path, codes: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    hexes = codes.tobytes().hex()
    with tmp.open("w", encoding="utf-8") as out:
        out.write("signal_type,signal_str,collab,category,tags\n")
        for i in range(len(codes)):
            out.write(f"pdq,{hexes[64 * i : 64 * i + 64]},bench-collab,POSITIVE_CLASS,violence\n")
    tmp.rename(path)


def import_with_cli(bank_dir: Path, listing: Path) -> dict[str, Any]:
    started = time.perf_counter()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "modgate.tools.cli",
            "bank",
            "import",
            "bench",
            str(listing),
            "--bank-dir",
            str(bank_dir),
        ],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"bench.banks: the import failed:\n{proc.stderr}")
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {
        "wall_s": round(seconds, 2),
        "peak_rss_mb": round(peak_kb / 1024, 1),
        "cli_output": proc.stdout.strip(),
    }


def queries(codes: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """16 frames 0-31 bits from banked codes (their rows), then 16 random unbanked frames."""
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(codes), size=QUERY_FRAMES // 2, replace=False)
    near = codes[rows].copy()
    for i, flips in enumerate(rng.integers(0, 32, size=len(rows))):
        for bit in rng.choice(256, size=flips, replace=False):
            near[i, bit // 8] ^= 1 << (bit % 8)
    far = rng.integers(0, 256, (QUERY_FRAMES - len(rows), 32), dtype=np.uint8)
    return np.concatenate([near, far]), rows


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 2),
        "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))] * 1000, 2),
        "min_ms": round(ordered[0] * 1000, 2),
    }


def time_lookups(matcher: Any, codes: np.ndarray, runs: int) -> dict[str, Any]:
    from tests.modgate.banks.policies import policy_with_banks

    rules = policy_with_banks({"bench": {"category": "violence"}}).banks
    qualities = np.full(QUERY_FRAMES, 100)
    wall, cpu, missed = [], [], 0
    for run in range(runs + 3):
        batch, rows = queries(codes, seed=run)
        t, c = time.perf_counter(), time.process_time()
        hits = matcher.match_pdq(batch, qualities, rules).hits
        t, c = time.perf_counter() - t, time.process_time() - c
        if run >= 3:  # warm-up
            wall.append(t)
            cpu.append(c)
        found = {h.frame for h in hits}
        missed += sum(1 for i in range(len(rows)) if i not in found)
    return {"runs": runs, "wall": percentiles(wall), "cpu": percentiles(cpu), "planted_frames_missed": missed}


def time_faiss(codes: np.ndarray, runs: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, build in (
        ("faiss IndexBinaryFlat", lambda: faiss.IndexBinaryFlat(256)),
        ("faiss IndexBinaryMultiHash 16x16 nflip=1", lambda: faiss.IndexBinaryMultiHash(256, 16, 16)),
    ):
        started = time.perf_counter()
        index = build()
        if hasattr(index, "nflip"):
            index.nflip = 1
        index.add(codes)
        built = time.perf_counter() - started
        wall = []
        for run in range(runs):
            batch, _ = queries(codes, seed=run)
            t = time.perf_counter()
            index.range_search(batch, 32)
            wall.append(time.perf_counter() - t)
        out[name] = {"build_s": round(built, 2), "runs": runs, "wall": percentiles(wall)}
        print(f"  {name}: p50 {out[name]['wall']['p50_ms']} ms", file=sys.stderr, flush=True)
        del index
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=200, help="timed 32-frame lookups")
    parser.add_argument("--baseline-runs", type=int, default=5, help="timed lookups per faiss baseline")
    args = parser.parse_args()
    faiss.omp_set_num_threads(1)
    load_before = os.getloadavg()

    codes = generate_codes(args.entries)
    listing = CACHE / f"bank-list-{args.entries}.csv"
    if not listing.exists():
        print(f"writing {listing} ...", file=sys.stderr, flush=True)
        write_list(listing, codes)
    report: dict[str, Any] = {"entries": args.entries, "list_mb": round(listing.stat().st_size / 1e6, 1)}

    with tempfile.TemporaryDirectory(prefix="bench-banks-") as tmp:
        print("importing with `modgate bank import` ...", file=sys.stderr, flush=True)
        report["import"] = import_with_cli(Path(tmp), listing)
        print(f"  {report['import']['cli_output']}", file=sys.stderr, flush=True)

        from modgate.banks.matcher import BankMatcher
        from modgate.banks.signals import SignalType

        process = psutil.Process()
        rss_before = process.memory_info().rss
        started = time.perf_counter()
        matcher = BankMatcher(Path(tmp), signals={SignalType.PDQ})
        loaded = matcher.banks["bench"]
        assert loaded.pdq is not None
        report["load"] = {
            "seconds": round(time.perf_counter() - started, 2),
            "backend": loaded.pdq.backend,
            "index_mb": round(loaded.pdq.nbytes() / 1e6, 1),
            "rss_added_mb": round((process.memory_info().rss - rss_before) / 1e6, 1),
        }
        print(f"  loaded: {report['load']}", file=sys.stderr, flush=True)
        banked = np.load(loaded.directory / "pdq.npy")
        report["lookup_32_frames"] = time_lookups(matcher, banked, args.runs)
        print(f"  lookup: {report['lookup_32_frames']}", file=sys.stderr, flush=True)
        report["baselines"] = time_faiss(banked, args.baseline_runs)

    report["target_p50_ms"] = 10.0
    report["machine"] = {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "faiss": faiss.__version__,
        "numpy": np.__version__,
        "load_avg_before": [round(x, 2) for x in load_before],
        "load_avg_after": [round(x, 2) for x in os.getloadavg()],
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "banks.json").write_text(json.dumps(report, indent=2) + "\n")
    lookup = report["lookup_32_frames"]
    print(
        f"\n{args.entries:,} PDQ entries: import {report['import']['wall_s']} s "
        f"(peak RSS {report['import']['peak_rss_mb']} MB); load {report['load']['seconds']} s, "
        f"index {report['load']['index_mb']} MB ({report['load']['backend']}), "
        f"RSS +{report['load']['rss_added_mb']} MB\n"
        f"32-frame lookup: p50 {lookup['wall']['p50_ms']} ms, p95 {lookup['wall']['p95_ms']} ms wall; "
        f"CPU p50 {lookup['cpu']['p50_ms']} ms (target p50 <= 10 ms); planted frames missed: "
        f"{lookup['planted_frames_missed']}\n"
        + "\n".join(f"{name}: p50 {row['wall']['p50_ms']} ms" for name, row in report["baselines"].items())
        + f"\nload average before {report['machine']['load_avg_before']}, "
        f"after {report['machine']['load_avg_after']}"
        f"\nwrote {RESULTS / 'banks.json'}"
    )


if __name__ == "__main__":
    main()
