"""The verdict store's cost: `python -m bench.store [--requests N] [--inserts N]`.

1. Three split_only gateway processes (no model services: what is timed is the request path
   around the pipeline) with the store off, on SQLite (the default), and on PostgreSQL (a
   temporary server, modgate.tools.pgserver). The same text-only request, a new request_id
   each time, sent round-robin to the three (interleaved, so load changes hit all three alike):
   client p50/p95 per gateway and the store's cost = p50(on) - p50(off). Target <= 5 ms.
2. A request_id sent twice: the second answer's client wall time (from the store, no pipeline)
   and the gateway's store_lookup stage. Target < 50 ms.
3. PostgreSQL (and SQLite) insert throughput: records shaped like a video verdict (32 frames x
   8 categories, 12 scored text items); VerdictStore.commit (one transaction each) from 1 thread
   and from 4, and the gateway's path: the ledger's GroupCommit with 32 requests finishing
   concurrently (verdicts that finish while a commit is in flight share the next one). Target
   >= 500 verdicts/s on PostgreSQL.

Prints a summary and writes bench/results/store.json with the load average before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench.workloads import RESULTS
from gateway.ledger.group_commit import GroupCommit
from modgate.client import ModerationClient
from modgate.store import StoreSettings, VerdictStore
from modgate.store.records import PolicyStamp, VerdictRecord, new_verdict_id
from modgate.tools.pgserver import TemporaryPostgres
from modgate.tools.stack import ManagedProcess, free_port, gateway_spec

REPO = Path(__file__).resolve().parents[1]
COST_TARGET_MS = 5.0
STORED_ANSWER_TARGET_MS = 50.0
PG_INSERT_TARGET = 500.0
CATEGORIES = ("violence", "weapons", "sexual", "hate", "harassment", "self_harm", "drugs", "spam_scam")


def say(line: str) -> None:
    print(f"bench.store: {line}", file=sys.stderr, flush=True)


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered), 3),
        "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))], 3),
    }


def start_gateway(work: Path, name: str, store_env: dict[str, str]) -> tuple[ManagedProcess, str]:
    upstreams = work / f"{name}-upstreams.yaml"
    upstreams.write_text("", encoding="utf-8")
    port = free_port()
    env = {
        "OTEL_SDK_DISABLED": "true",
        "PYTHONPATH": str(REPO),
        "MODGATE_GATEWAY_MODE": "split_only",
        "MODGATE_GATEWAY_SPLIT_WORKERS": "0",
        "MODGATE_STORE_SPOOL_DIR": str(work / f"{name}-spool"),
        **store_env,
    }
    spec = gateway_spec(port, metrics_port=0, upstreams_file=upstreams, env=env, name=name)
    proc = ManagedProcess(spec, work / "logs")
    proc.start()
    deadline = time.monotonic() + 120
    while not spec.ready():
        if proc.exited() is not None or time.monotonic() > deadline:
            raise SystemExit(f"bench.store: gateway {name} did not start:\n{proc.log_tail(40)}")
        time.sleep(0.2)
    return proc, f"127.0.0.1:{port}"


def timed(call: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = call()
    return (time.perf_counter() - started) * 1000, result


def request_path_cost(targets: dict[str, str], requests: int) -> dict[str, Any]:
    """Interleaved text-only requests with fresh ids; per gateway client wall percentiles."""
    samples: dict[str, list[float]] = {name: [] for name in targets}
    clients = {name: ModerationClient(target, timeout_s=30) for name, target in targets.items()}
    try:
        for run in range(requests + 20):
            for name, client in clients.items():
                rid = f"cost-{name}-{run}"
                ms, _ = timed(lambda c=client, r=rid: c.moderate_text("nice video, thanks", request_id=r))
                if run >= 20:  # warm-up: connections, first policy stamp, SQLite pages
                    samples[name].append(ms)
            if run % 100 == 0:
                say(f"  request path: {run}/{requests + 20}")
        stored = {}
        for name in ("sqlite", "postgresql"):
            client, first = clients[name], []
            for run in range(50):
                rid = f"twice-{name}-{run}"
                client.moderate_text("nice video, thanks", request_id=rid)
                ms, verdict = timed(
                    lambda c=client, r=rid: c.moderate_text("nice video, thanks", request_id=r)
                )
                assert verdict.from_store, verdict
                first.append(ms)
            lookups = [t.duration_ms for t in verdict.timings if t.stage == "store_lookup"]
            stored[name] = {
                "client": percentiles(first),
                "last_store_lookup_ms": lookups[0] if lookups else None,
            }
    finally:
        for client in clients.values():
            client.close()
    walls = {name: percentiles(values) for name, values in samples.items()}
    off = walls["off"]["p50_ms"]
    return {
        "requests_per_gateway": requests,
        "client_wall": walls,
        "store_cost_p50_ms": {
            name: round(walls[name]["p50_ms"] - off, 3) for name in ("sqlite", "postgresql")
        },
        "stored_answer": stored,
    }


def video_record(index: int, rng: random.Random, policy: PolicyStamp) -> VerdictRecord:
    """A record the size of a 32-frame video verdict's (frames, transcript, title)."""
    frames = [
        {
            "index": i,
            "timestamp_ms": i * 1875,
            "scores": {c: round(rng.random() * 0.3, 4) for c in CATEGORIES},
            "best_prompts": {c: f"a photo of {c}" for c in CATEGORIES},
        }
        for i in range(32)
    ]
    model = {"name": "all-MiniLM-L6-v2", "version": "53aa5117", "engine": "st", "variant": "stable"}
    texts = [
        {
            "item": {"id": f"t{i}", "text": "some words spoken in the clip " * 3, "source": "transcript"},
            "result": {
                "id": f"t{i}",
                "scores": {c: round(rng.random() * 0.4, 4) for c in CATEGORIES},
                "matches": [],
            },
            "model": model,
        }
        for i in range(12)
    ]
    now = time.time()
    return VerdictRecord(
        verdict_id=new_verdict_id(),
        caller="bench",
        request_id=f"bench-{index}-{rng.random()}",
        request_digest="0" * 64,
        content_id=f"content-{index}",
        received_at=now - 2,
        decided_at=now,
        decision="ALLOW",
        risk=0.3,
        degraded=False,
        policy=policy,
        trace_id="ab" * 16,
        models={"TEXT": {"name": "all-MiniLM-L6-v2", "version": "53aa5117", "variant": "stable"}},
        fusion={"version": 1, "kind": "fused", "frames": frames, "texts": texts},
        verdict=os.urandom(3000),
    )


async def group_commit(store: VerdictStore, records: list[VerdictRecord], concurrency: int = 32) -> float:
    """Verdicts/s through GroupCommit with `concurrency` requests committing at once."""
    pool = ThreadPoolExecutor(4)
    loop = asyncio.get_running_loop()

    async def run(_operation: str, call: Callable[[VerdictStore], list[bool]]) -> list[bool]:
        return await loop.run_in_executor(pool, call, store)

    group = GroupCommit(run)
    queue = list(records)

    async def worker() -> None:
        while queue:
            await group.commit(queue.pop(), None)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    pool.shutdown()
    return len(records) / (time.perf_counter() - started)


def insert_throughput(url: str, count: int) -> dict[str, Any]:
    store = VerdictStore.open(StoreSettings(url=url))
    policy = PolicyStamp("default", "bench", "benchdigest00000", {"name": "default"})
    rng = random.Random(17)
    figures: dict[str, Any] = {}
    try:
        for threads in (1, 4):
            records = [video_record(i, rng, policy) for i in range(count)]
            started = time.perf_counter()
            with ThreadPoolExecutor(threads) as pool:
                list(pool.map(store.commit, records))
            seconds = time.perf_counter() - started
            figures[f"{threads}_threads_per_s"] = round(count / seconds, 1)
        records = [video_record(i, rng, policy) for i in range(count)]
        figures["group_commit_32_concurrent_per_s"] = round(asyncio.run(group_commit(store, records)), 1)
        figures["record_json_kb"] = round(len(json.dumps(records[0].fusion)) / 1024, 1)
    finally:
        store.close()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=300, help="timed requests per gateway")
    parser.add_argument("--inserts", type=int, default=2000, help="records per insert-throughput run")
    args = parser.parse_args()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-store-") as tmp, TemporaryPostgres() as server:
        work = Path(tmp)
        server.create_database("gateway")
        server.create_database("inserts")
        stores = {
            "off": {"MODGATE_STORE_ENABLED": "false"},
            "sqlite": {"MODGATE_STORE_URL": f"sqlite:///{work / 'gateway.db'}"},
            "postgresql": {"MODGATE_STORE_URL": server.url_for("gateway")},
        }
        procs, targets = [], {}
        try:
            for name, env in stores.items():
                proc, targets[name] = start_gateway(work, name, env)
                procs.append(proc)
            say(f"request path: {args.requests} text-only requests per gateway, interleaved ...")
            path = request_path_cost(targets, args.requests)
        finally:
            for proc in procs:
                proc.stop()
        say(f"insert throughput: {args.inserts} video-sized records, 1 and 4 threads ...")
        inserts = {
            "postgresql": insert_throughput(server.url_for("inserts"), args.inserts),
            "sqlite": insert_throughput(f"sqlite:///{work / 'inserts.db'}", args.inserts),
        }
    result = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "request_path": path,
        "inserts": inserts,
        "targets": {
            "store_cost_p50_ms": COST_TARGET_MS,
            "stored_answer_ms": STORED_ANSWER_TARGET_MS,
            "postgresql_inserts_per_s": PG_INSERT_TARGET,
        },
    }
    walls = path["client_wall"]
    print("verdict store cost (split_only gateways, text-only requests, interleaved):")
    for name in ("off", "sqlite", "postgresql"):
        wall = walls[name]
        print(f"  store {name:>10}: client p50 {wall['p50_ms']:.2f} ms, p95 {wall['p95_ms']:.2f} ms")
    for name, cost in path["store_cost_p50_ms"].items():
        print(f"  cost of the store ({name}): p50 {cost:+.2f} ms (target <= {COST_TARGET_MS:g} ms)")
    for name, stored in path["stored_answer"].items():
        print(
            f"  request_id sent again ({name}): client p50 {stored['client']['p50_ms']:.2f} ms, "
            f"p95 {stored['client']['p95_ms']:.2f} ms (target < {STORED_ANSWER_TARGET_MS:g} ms)"
        )
    for name, figures in inserts.items():
        print(
            f"  inserts ({name}, {figures['record_json_kb']} KB fusion records): "
            f"{figures['1_threads_per_s']:.0f}/s on 1 thread, {figures['4_threads_per_s']:.0f}/s on 4, "
            f"{figures['group_commit_32_concurrent_per_s']:.0f}/s by group commit (32 concurrent)"
            + (f" (target >= {PG_INSERT_TARGET:g}/s)" if name == "postgresql" else "")
        )
    print(f"  load average before {result['load_average_before']}, after {result['load_average_after']}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "store.json"
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
