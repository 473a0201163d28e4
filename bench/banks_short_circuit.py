"""The exact-hash short-circuit's latency: `python -m bench.banks_short_circuit [--runs N]`.

1. The 60 s 720p clip of the end-to-end bench (bench/workloads.py, cached), banked with the real
   CLI (`python -m modgate.tools.cli bank add`) in a temporary bank directory.
2. A real gateway process (`python -m gateway`) with a policy that names the bank, its model
   services pointing at a port nobody listens on: a verdict can only come from the short-circuit.
3. The clip moderated --runs times unary (one Moderate call) and --runs times streamed
   (ModerateStream, 1 MiB chunks) after warm-up: client wall time p50/p95 (what a caller
   waits, the upload over loopback included) and the gateway's own stages from the verdict
   (receive, bank_lookup). Target: verdict under 100 ms.
4. The digests alone in this process (MD5 + SHA-256 of the file's bytes, the gateway's cost
   per byte while they arrive).

Prints a summary and writes bench/results/banks_short_circuit.json with the load average
before and after (other work on a shared machine inflates every figure).
"""

from __future__ import annotations

import argparse
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

import yaml

from bench.workloads import RESULTS, clip
from modgate.banks.digests import ContentDigests
from modgate.client import ModerationClient
from modgate.policy import DEFAULT_POLICY_DIR
from modgate.tools.stack import ManagedProcess, free_port, gateway_spec
from modgate.v1 import moderation_pb2 as pb

REPO = Path(__file__).resolve().parents[1]
TARGET_MS = 100.0
WARMUP = 3


def say(line: str) -> None:
    print(f"bench.banks_short_circuit: {line}", file=sys.stderr, flush=True)


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered), 2),
        "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))], 2),
        "min_ms": round(ordered[0], 2),
        "max_ms": round(ordered[-1], 2),
    }


def bank_file(bank_dir: Path, path: Path) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODGATE_BANK")}
    env.update(PYTHONPATH=str(REPO), MODGATE_BANK_DIR=str(bank_dir))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "modgate.tools.cli",
            "bank",
            "add",
            "known",
            str(path),
            "--category",
            "violence",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"bench.banks_short_circuit: `modgate bank add` failed:\n{proc.stderr}")
    return proc.stdout.strip()


def write_policy(directory: Path) -> None:
    data = yaml.safe_load((DEFAULT_POLICY_DIR / "default.yaml").read_text(encoding="utf-8"))
    data["banks"] = {"known": {"category": "violence", "action": "BLOCK"}}
    directory.mkdir()
    (directory / "default.yaml").write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


def start_gateway(work: Path) -> tuple[ManagedProcess, str]:
    nobody = f"http://127.0.0.1:{free_port()}"
    upstreams = work / "upstreams.yaml"
    upstreams.write_text(
        "".join(f'{service}:\n  stable: {{url: "{nobody}"}}\n' for service in ("speech", "vision", "text")),
        encoding="utf-8",
    )
    port = free_port()
    env = {
        "OTEL_SDK_DISABLED": "true",
        "PYTHONPATH": str(REPO),
        "MODGATE_GATEWAY_MODE": "models",
        "MODGATE_POLICY_DIR": str(work / "policies"),
        "MODGATE_BANK_DIR": str(work / "banks"),
    }
    spec = gateway_spec(port, metrics_port=free_port(), upstreams_file=upstreams, env=env)
    proc = ManagedProcess(spec, work / "logs")
    proc.start()
    deadline = time.monotonic() + 120
    while not spec.ready():
        if proc.exited() is not None or time.monotonic() > deadline:
            raise SystemExit(f"bench.banks_short_circuit: the gateway did not start:\n{proc.log_tail(40)}")
        time.sleep(0.2)
    return proc, f"127.0.0.1:{port}"


def measure(target: str, path: Path, runs: int, *, streamed: bool) -> dict[str, Any]:
    data = path.read_bytes()
    limit = 0 if streamed else len(data) + 1
    wall: list[float] = []
    stages: dict[str, list[float]] = {}
    with ModerationClient(target, timeout_s=30, unary_limit_bytes=limit) as client:
        for run in range(runs + WARMUP):
            started = time.perf_counter()
            verdict = client.moderate_bytes(data)
            elapsed = (time.perf_counter() - started) * 1000
            if verdict.decision != pb.DECISION_BLOCK or verdict.media.frames_sampled:
                raise SystemExit(f"bench.banks_short_circuit: not a short-circuit verdict: {verdict}")
            if run >= WARMUP:
                wall.append(elapsed)
                for timing in verdict.timings:
                    stages.setdefault(timing.stage, []).append(float(timing.duration_ms))
    return {
        "runs": runs,
        "client_wall": percentiles(wall),
        "gateway_stages_p50_ms": {name: statistics.median(v) for name, v in stages.items()},
    }


def digest_cost(path: Path) -> dict[str, float]:
    data = path.read_bytes()
    samples = []
    for _ in range(5):
        started = time.perf_counter()
        ContentDigests.of_bytes(data)
        samples.append(time.perf_counter() - started)
    best = min(samples)
    return {"ms": round(best * 1000, 2), "mb_per_s": round(len(data) / best / 1e6, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=30, help="timed requests per way (unary, streamed)")
    args = parser.parse_args()
    load_before = os.getloadavg()
    workload = clip(60.0)
    assert workload.path is not None
    path = workload.path
    report: dict[str, Any] = {"file": {"path": str(path), "mb": round(path.stat().st_size / 1e6, 2)}}
    report["file"].update({k: v for k, v in workload.facts.items() if isinstance(v, (int, float, str))})
    with tempfile.TemporaryDirectory(prefix="bench-short-circuit-") as tmp:
        work = Path(tmp)
        say(f"banking {path} with `modgate bank add` ...")
        report["bank_add"] = bank_file(work / "banks", path)
        write_policy(work / "policies")
        gateway, target = start_gateway(work)
        try:
            for way in ("unary", "streamed"):
                say(f"{args.runs} {way} requests ...")
                report[way] = measure(target, path, args.runs, streamed=way == "streamed")
        finally:
            gateway.stop()
    report["digests_in_process"] = digest_cost(path)
    report["target_ms"] = TARGET_MS
    report["machine"] = {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "load_avg_before": [round(x, 2) for x in load_before],
        "load_avg_after": [round(x, 2) for x in os.getloadavg()],
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "banks_short_circuit.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    lines = [f"exact-hash short-circuit on {path.name} ({report['file']['mb']} MB, 60 s 720p):"]
    for way in ("unary", "streamed"):
        wall, stages = report[way]["client_wall"], report[way]["gateway_stages_p50_ms"]
        lines.append(
            f"  {way}: client p50 {wall['p50_ms']} ms, p95 {wall['p95_ms']} ms "
            f"(target < {TARGET_MS:.0f} ms); "
            f"gateway stages p50 {stages}"
        )
    digests = report["digests_in_process"]
    lines.append(f"  MD5 + SHA-256 of the file in-process: {digests['ms']} ms ({digests['mb_per_s']} MB/s)")
    lines.append(
        f"  load average before {report['machine']['load_avg_before']}, "
        f"after {report['machine']['load_avg_after']}"
    )
    lines.append(f"wrote {out}")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
