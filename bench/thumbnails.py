"""What keeping evidence-frame thumbnails costs a verdict: `python -m bench.thumbnails [--reps N]`.

The ledger encodes a small JPEG of each frame a verdict's VISUAL evidence points at (at most 8,
160 px; gateway/ledger/thumbnails.py) and commits them with the verdict. Measured here, in one
process, interleaved so load changes hit both sides alike:
1. the encode: evidence_thumbnails for 1 and 8 evidence frames sampled at 640x360 and 1280x720
   (the OCR sampling size), median over --reps; a verdict without VISUAL evidence costs nothing;
2. the commit: VerdictStore.commit (SQLite, the default store) of a video-sized record with no
   thumbnails vs the same record with 8, median and the difference;
3. the bytes kept per thumbnail.
Prints a summary and writes bench/results/thumbnails.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.store import video_record
from bench.workloads import RESULTS
from gateway.ledger.thumbnails import evidence_thumbnails
from gateway.media.types import SampledFrame
from modgate.store import StoreSettings, VerdictStore
from modgate.store.records import PolicyStamp
from modgate.v1 import moderation_pb2 as pb

SIZES = ((640, 360), (1280, 720))
POLICY = PolicyStamp("default", "bench", "0123456789abcdef", {"name": "default"})


def say(line: str) -> None:
    print(f"bench.thumbnails: {line}", file=sys.stderr, flush=True)


def frames(width: int, height: int, count: int = 32) -> list[SampledFrame]:
    rng = np.random.default_rng(0)
    # Camera-like content (noise over a gradient) compresses like real frames, unlike a flat fill.
    base = np.linspace(0, 255, width, dtype=np.float32)[None, :, None]
    return [
        SampledFrame(
            timestamp_ms=i * 1000,
            image=np.clip(base + rng.normal(0, 25, (height, width, 3)), 0, 255).astype(np.uint8),
            keyframe=False,
            stream_index=0,
        )
        for i in range(count)
    ]


def verdict_with(evidence_frames: int) -> pb.Verdict:
    return pb.Verdict(
        evidence=[pb.Evidence(modality=pb.MODALITY_VISUAL, frame_index=2 * i) for i in range(evidence_frames)]
    )


def median_ms(samples: list[float]) -> float:
    return round(statistics.median(samples) * 1000, 3)


def encode_costs(reps: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for width, height in SIZES:
        sampled = frames(width, height)
        timings: dict[int, list[float]] = {1: [], 8: []}
        sizes: list[int] = []
        for _ in range(reps):
            for count in timings:
                started = time.perf_counter()
                thumbs = evidence_thumbnails(verdict_with(count), sampled, max_side=160, limit=8)
                timings[count].append(time.perf_counter() - started)
                sizes += [len(t.jpeg) for t in thumbs]
        out[f"{width}x{height}"] = {
            "encode_1_frame_p50_ms": median_ms(timings[1]),
            "encode_8_frames_p50_ms": median_ms(timings[8]),
            "bytes_per_thumbnail_median": int(statistics.median(sizes)),
        }
        say(f"{width}x{height}: {out[f'{width}x{height}']}")
    return out


def commit_costs(reps: int) -> dict[str, Any]:
    thumbs = evidence_thumbnails(verdict_with(8), frames(1280, 720), max_side=160, limit=8)
    rng = random.Random(0)
    with tempfile.TemporaryDirectory() as scratch:
        store = VerdictStore.open(StoreSettings(url=f"sqlite:///{Path(scratch) / 'verdicts.db'}"))
        try:
            timings: dict[str, list[float]] = {"none": [], "eight": []}
            for i in range(reps):
                for kind in timings:
                    record = video_record(i, rng, POLICY)
                    if kind == "eight":
                        record = dataclasses.replace(record, thumbnails=thumbs)
                    started = time.perf_counter()
                    store.commit(record)
                    timings[kind].append(time.perf_counter() - started)
        finally:
            store.close()
    none, eight = median_ms(timings["none"]), median_ms(timings["eight"])
    result = {
        "commit_p50_ms_without": none,
        "commit_p50_ms_with_8": eight,
        "difference_ms": round(eight - none, 3),
    }
    say(f"SQLite commit: {result}")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.thumbnails", description=__doc__)
    parser.add_argument("--reps", type=int, default=50, help="repetitions per measurement (default 50)")
    args = parser.parse_args(argv)
    report = {"encode": encode_costs(args.reps), "commit_sqlite": commit_costs(args.reps)}
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / "thumbnails.json"
    path.write_text(json.dumps(report, indent=2), encoding="utf-8")
    print(json.dumps(report, indent=2))
    say(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
