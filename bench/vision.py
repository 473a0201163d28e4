"""Vision service throughput on this machine: `python -m bench.vision [--repeats N] [--no-http]`.

ViT-B-32 with RANDOM weights (none can be downloaded here): the figures are speed only, the
scores mean nothing. All cases run in one invocation on the same machine:

  model  batch of 1        ClipEncoder.encode_images, one 224x224 frame per forward pass (8 passes)
  model  batch of B        the same, B frames per pass (B = --batch, default 32 = MAX_BATCH_SIZE)
  http   sequential x1     one 640x360 JPEG frame per POST /score, one request at a time
  http   concurrent x1     --clients callers, one frame per request: BentoML's adaptive batching
                           merges them; the observed model batch sizes are reported
  http   1 request xB      B distinct frames in one request

Frames/second are medians over --repeats timed runs after a warm-up; CPU seconds per frame are
reported next to them because other work on a shared machine inflates wall time but not CPU
time. Prints a table and writes bench/results/vision.json with the load average before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from PIL import Image

from modgate.ports import http_url
from modgate.tools.stack import ManagedProcess, free_port, service_spec

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
ARCH = "ViT-B-32"


def say(line: str) -> None:
    print(f"bench.vision: {line}", file=sys.stderr, flush=True)


def frames_jpeg(n: int, seed: int = 0) -> list[bytes]:
    """Distinct 640x360 frames (random blocks, so no two are near-duplicates)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        blocks = rng.integers(0, 256, size=(9, 16, 3), dtype=np.uint8)
        image = Image.fromarray(blocks).resize((640, 360), Image.Resampling.NEAREST)
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=90)
        out.append(buffer.getvalue())
    return out


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def timed(run: Callable[[], object], frames: int, repeats: int) -> dict[str, float]:
    run()  # warm-up
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), _cpu_seconds()
        run()
        walls.append(time.perf_counter() - wall)
        cpus.append(_cpu_seconds() - cpu)
    wall_s = statistics.median(walls)
    return {
        "frames": frames,
        "median_s": round(wall_s, 4),
        "frames_per_s": round(frames / wall_s, 2),
        "cpu_s_per_frame": round(statistics.median(cpus) / frames, 4),
    }


def in_process(batch: int, repeats: int, threads: int | None, precision: str) -> dict[str, Any]:
    import torch

    from services.vision.config import VisionSettings
    from services.vision.encoder import ClipEncoder
    from services.vision.models import load_clip, pick_device, resolve_source

    if threads:
        torch.set_num_threads(threads)
    source = resolve_source(VisionSettings(arch=ARCH, allow_uncalibrated=True))
    encoder = ClipEncoder(load_clip(source, pick_device("cpu")), variant="stable", precision=precision)  # type: ignore[arg-type]
    size = encoder.clip.preprocess.size
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, size=(batch, size, size, 3), dtype=np.uint8)
    say(f"model: {encoder.model_id}, {encoder.precision}, {torch.get_num_threads()} torch threads")
    singles = min(batch, 8)  # batch-of-1 passes timed per run: enough for a per-frame median
    one = timed(lambda: [encoder.encode_images(pixels[i : i + 1]) for i in range(singles)], singles, repeats)
    say(f"  model batch of 1: {one['frames_per_s']} frames/s")
    many = timed(lambda: encoder.encode_images(pixels), batch, repeats)
    say(f"  model batch of {batch}: {many['frames_per_s']} frames/s")
    return {
        "torch_threads": torch.get_num_threads(),
        "precision": encoder.precision,
        "batch_1": one,
        f"batch_{batch}": many,
        "speedup": round(many["frames_per_s"] / one["frames_per_s"], 2),
    }


async def _post(client: httpx.AsyncClient, frames: list[bytes], start_ms: int) -> dict[str, Any]:
    files = [("frames", (f"f{i}.jpg", f, "image/jpeg")) for i, f in enumerate(frames)]
    data = {"timestamps_ms": json.dumps([start_ms + 40 * i for i in range(len(frames))]), "policy": "default"}
    response = await client.post("/score", files=files, data=data)
    response.raise_for_status()
    return response.json()


def _start_service(batch: int, threads: int | None, precision: str) -> ManagedProcess:
    """`bentoml serve` of the vision service on a free port, ready; own BENTOML_HOME, no tracing."""
    tmp = Path(tempfile.mkdtemp(prefix="bench-vision-"))
    env = {
        "BENTOML_HOME": str(tmp / "bentoml"),
        "BENTOML_DO_NOT_TRACK": "True",
        "OTEL_SDK_DISABLED": "true",
        "PYTHONUNBUFFERED": "1",
        "MODGATE_VISION_ALLOW_UNCALIBRATED": "true",
        "MODGATE_VISION_ARCH": ARCH,
        "MODGATE_VISION_MAX_BATCH_SIZE": str(batch),
        "MODGATE_VISION_PRECISION": precision,
    }
    if threads:  # otherwise the service's own default
        env["MODGATE_VISION_THREADS"] = str(threads)
    service = ManagedProcess(service_spec("vision", free_port(), env=env), tmp)
    service.start()
    deadline = time.monotonic() + 600
    while not service.spec.ready():
        if service.exited() is not None or time.monotonic() > deadline:
            service.stop()
            raise RuntimeError(f"the vision service did not start; its log ends:\n{service.log_tail()}")
        time.sleep(0.5)
    return service


def over_http(batch: int, clients: int, repeats: int, threads: int | None, precision: str) -> dict[str, Any]:
    service = _start_service(batch, threads, precision)
    url = http_url(service.spec.port)
    try:
        jpegs = frames_jpeg(max(batch, clients) * 2)

        async def sequential() -> None:
            async with httpx.AsyncClient(base_url=url, timeout=600) as client:
                for i in range(clients):
                    await _post(client, [jpegs[i]], i)

        sizes: list[int] = []

        async def concurrent() -> None:
            async with httpx.AsyncClient(base_url=url, timeout=600) as client:
                results = await asyncio.gather(*(_post(client, [jpegs[i]], i) for i in range(clients)))
            sizes.extend(max(r["batch_sizes"]) for r in results)

        async def one_request() -> None:
            async with httpx.AsyncClient(base_url=url, timeout=600) as client:
                await _post(client, jpegs[:batch], 0)

        rows = {}
        for name, run, frames in (
            ("sequential_x1", sequential, clients),
            ("concurrent_x1", concurrent, clients),
            (f"one_request_x{batch}", one_request, batch),
        ):
            rows[name] = timed(lambda run=run: asyncio.run(run()), frames, repeats)  # type: ignore[misc]
            rows[name].pop("cpu_s_per_frame")  # the work happens in the server processes
            say(f"  http {name}: {rows[name]['frames_per_s']} frames/s")
        rows["concurrent_x1"]["clients"] = clients
        rows["concurrent_x1"]["model_batch_sizes_median"] = statistics.median(sizes)
        rows["concurrent_x1"]["model_batch_sizes_max"] = max(sizes)
        rows["speedup_concurrent_vs_sequential"] = round(
            rows["concurrent_x1"]["frames_per_s"] / rows["sequential_x1"]["frames_per_s"], 2
        )
        return rows
    finally:
        service.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.vision", description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=32, help="model batch size / MAX_BATCH_SIZE (32)")
    parser.add_argument("--clients", type=int, default=16, help="concurrent single-frame HTTP callers (16)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own)")
    parser.add_argument("--precision", default="auto", help="image tower: auto (service default), fp32, bf16")
    parser.add_argument("--no-http", action="store_true", help="skip the HTTP cases (no server start)")
    args = parser.parse_args(argv)
    os.environ.setdefault("BENTOML_DO_NOT_TRACK", "True")

    report: dict[str, Any] = {
        "arch": ARCH,
        "weights": "random (speed only: no pretrained weights on this machine)",
        "device": "cpu",
        "cpu_count": os.cpu_count(),
        "machine": platform.processor() or platform.machine(),
        "load_avg_before": os.getloadavg(),
    }
    report["model"] = in_process(args.batch, args.repeats, args.threads, args.precision)
    if not args.no_http:
        report["http"] = over_http(args.batch, args.clients, args.repeats, args.threads, args.precision)
    report["load_avg_after"] = os.getloadavg()

    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "vision.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    model = report["model"]
    setup = f"{model['precision']}, {model['torch_threads']} torch threads"
    print(f"vision bench ({ARCH}, random weights, cpu, {setup})")
    print(f"  load average before {report['load_avg_before']}, after {report['load_avg_after']}")
    for name, row in model.items():
        if isinstance(row, dict):
            cpu = row["cpu_s_per_frame"]
            print(f"  model {name:<22} {row['frames_per_s']:>8.2f} frames/s  {cpu:.3f} CPU s/frame")
    print(f"  model speed-up batched vs batch of 1: {model['speedup']}x")
    for name, row in report.get("http", {}).items():
        if isinstance(row, dict):
            extra = ""
            if "model_batch_sizes_median" in row:
                median, largest = row["model_batch_sizes_median"], row["model_batch_sizes_max"]
                extra = f"  (model batches: median {median}, max {largest})"
            print(f"  http  {name:<22} {row['frames_per_s']:>8.2f} frames/s{extra}")
    if "http" in report:
        print(
            f"  http speed-up concurrent vs sequential: {report['http']['speedup_concurrent_vs_sequential']}x"
        )
    print(f"wrote {RESULTS / 'vision.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
