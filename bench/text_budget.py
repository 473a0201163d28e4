"""What text work costs the text service, to size the gateway's cost admission and text batches.

    python -m bench.text_budget [--threads 1] [--seconds 20]

Starts `bentoml serve services.text.service:Text` (1 torch thread, as `modgate up` runs it on a
small machine) and measures, in one invocation:

  cpu          CPU seconds per 1,000 characters of caption text, in process (1 torch thread,
               the whole scoring path): the load-independent cost the gateway's work units
               are denominated in (bench.vision and bench.speech report CPU s per frame and
               per audio minute the same way)
  throughput   chars/s for caption-sized items (2,000 characters of English sentences each),
               sent as calls of 8/32/128 items one at a time: the service's capacity for the
               largest requests the gateway admits
  title alone  latency of a single-title call (p50/p95), nothing else running
  title beside latency of single-title calls while a second client keeps one call of N chars
               in flight at all times (N = 4k, 16k, 64k): how long a small request waits
               behind one batch of a large one, i.e. what the gateway's text batch bound costs
               everybody else

Prints a table and writes bench/results/text_budget.json (with the load average). The figures
and how the gateway defaults follow from them are in bench/README.md ("Cost admission").
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from bench.text import LABELLED, RESULTS, running_text_service
from modgate.tools.load import percentile

ITEM_CHARS = 2000
THROUGHPUT_BATCHES = (1, 2, 4)
BESIDE_CHARS = (500, 2_000, 8_000)


def caption_text(chars: int, offset: int = 0) -> str:
    """English sentences (the held-out set, rotated) up to `chars` characters."""
    sentences = [s for s, _ in LABELLED]
    out: list[str] = []
    size = 0
    i = offset
    while size < chars:
        sentence = sentences[i % len(sentences)]
        out.append(sentence)
        size += len(sentence) + 1
        i += 1
    return " ".join(out)[:chars]


def body(texts: list[str]) -> dict[str, Any]:
    return {"items": [{"id": str(i), "text": t, "source": "caption"} for i, t in enumerate(texts)]}


def throughput(client: httpx.Client, seconds: float) -> dict[str, dict[str, float]]:
    rows = {}
    for n in THROUGHPUT_BATCHES:
        texts = [caption_text(ITEM_CHARS, offset=i) for i in range(n)]
        client.post("/moderate", json=body(texts[:2])).raise_for_status()  # warm-up
        calls, started = 0, time.perf_counter()
        while calls == 0 or time.perf_counter() - started < seconds / len(THROUGHPUT_BATCHES):
            client.post("/moderate", json=body(texts)).raise_for_status()
            calls += 1
        elapsed = time.perf_counter() - started
        chars = calls * n * ITEM_CHARS
        rows[f"{n} items x {ITEM_CHARS} chars"] = {
            "calls": calls,
            "seconds_per_call": round(elapsed / calls, 3),
            "chars_per_s": round(chars / elapsed),
        }
        print(f"  {n} items: {rows[f'{n} items x {ITEM_CHARS} chars']}", file=sys.stderr, flush=True)
    return rows


def cpu_per_kchar(items: int = 8) -> dict[str, float]:
    """CPU seconds of the whole scoring path per 1,000 caption characters, in this process."""
    import torch

    from modgate.policy import DEFAULT_POLICY_DIR, load_policy
    from modgate.wire import TextItem
    from services.text.encoder import load_text_encoder
    from services.text.models import resolve_model
    from services.text.normalise import WordSegmenter
    from services.text.pipeline import TextModerator

    torch.set_num_threads(1)
    resolved = resolve_model()
    encoder = load_text_encoder("minilm", minilm=resolved, usem=None, threads=1)
    moderator = TextModerator(segmenter=WordSegmenter(encoder.vocabulary()))
    bundle = moderator.build_policy(load_policy(DEFAULT_POLICY_DIR / "default.yaml"), encoder.encode)
    batch = [TextItem(id=str(i), text=caption_text(ITEM_CHARS, i), source="caption") for i in range(items)]
    moderator.moderate(batch[:1], bundle, encoder.encode)  # warm-up
    wall, cpu = time.perf_counter(), time.process_time()
    moderator.moderate(batch, bundle, encoder.encode)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    kchars = items * ITEM_CHARS / 1000
    return {"chars": items * ITEM_CHARS, "cpu_s_per_kchar": round(cpu / kchars, 4), "wall_s": round(wall, 2)}


def title_latency(client: httpx.Client, seconds: float) -> list[float]:
    title = {"items": [{"id": "title", "text": "I know where you live", "source": "title"}]}
    latencies = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        started = time.perf_counter()
        client.post("/moderate", json=title).raise_for_status()
        latencies.append(time.perf_counter() - started)
    return latencies


def summary(latencies: list[float]) -> dict[str, float]:
    return {
        "calls": len(latencies),
        "p50_ms": round(percentile(latencies, 50) * 1000, 1),
        "p95_ms": round(percentile(latencies, 95) * 1000, 1),
        "mean_ms": round(statistics.fmean(latencies) * 1000, 1) if latencies else 0.0,
    }


def beside(url: str, chars: int, seconds: float) -> dict[str, float]:
    """Title latency while another client keeps one `chars`-character call in flight."""
    stop = threading.Event()
    texts = [caption_text(min(chars, ITEM_CHARS), offset=i) for i in range(max(1, chars // ITEM_CHARS))]
    batches = [0]

    def neighbour() -> None:
        with httpx.Client(base_url=url, timeout=120) as other:
            while not stop.is_set():
                other.post("/moderate", json=body(texts)).raise_for_status()
                batches[0] += 1

    thread = threading.Thread(target=neighbour, daemon=True)
    thread.start()
    try:
        time.sleep(0.5)
        with httpx.Client(base_url=url, timeout=120) as client:
            row = summary(title_latency(client, seconds))
    finally:
        stop.set()
        thread.join(timeout=120)
    row["neighbour_calls"] = batches[0]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the text service")
    parser.add_argument("--seconds", type=float, default=20.0, help="seconds per measurement group")
    parser.add_argument("--json", type=Path, default=RESULTS / "text_budget.json")
    args = parser.parse_args()
    load_before = os.getloadavg()
    cpu = cpu_per_kchar()
    print(f"  in process: {cpu}", file=sys.stderr, flush=True)
    with running_text_service(args.threads) as url, httpx.Client(base_url=url, timeout=120) as client:
        rates = throughput(client, args.seconds)
        alone = summary(title_latency(client, args.seconds / 2))
        print(f"  title alone: {alone}", file=sys.stderr, flush=True)
        near = {}
        for chars in BESIDE_CHARS:
            near[f"beside {chars} chars"] = beside(url, chars, args.seconds / 2)
            print(
                f"  title beside {chars} chars: {near[f'beside {chars} chars']}", file=sys.stderr, flush=True
            )
    record = {
        "benchmark": "text_budget",
        "threads": args.threads,
        "cpu_count": os.cpu_count(),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "cpu": cpu,
        "throughput": rates,
        "title_alone": alone,
        "title_beside": near,
    }
    print(f"in process, 1 thread: {cpu['cpu_s_per_kchar']} CPU s per 1,000 caption characters")
    print(f"text service, {args.threads} thread(s): throughput")
    for name, row in rates.items():
        print(f"  {name:<24} {row['chars_per_s']:>9} chars/s  ({row['seconds_per_call']} s a call)")
    print(f"  title alone             p50 {alone['p50_ms']} ms  p95 {alone['p95_ms']} ms")
    for name, row in near.items():
        print(f"  title {name:<18} p50 {row['p50_ms']} ms  p95 {row['p95_ms']} ms")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
