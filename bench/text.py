"""Text service throughput on this machine: `python -m bench.text [--repeats N] [--no-http]`.

Workload: the 96 short held-out sentences of services/text/data/legacy_heldout.tsv
(captions/titles of 4-16 words), scored against the default policy. Reports the median items/second over
``--repeats`` timed runs after a warm-up, all in one invocation on the same machine, for two
configurations of the service: ``before`` (all-MiniLM-L6-v2 + exemplar similarity, one window per
text: the service until the trained scorer; the default policy with MODGATE_TEXT_ENCODER=minilm)
and ``after`` (the default encoder, USE multilingual + MiniLM, and the "multilingual" policy's
trained scorer, every sentence of a longer text scored too):

  encoder   batch of 1       one sentence per forward pass (all-MiniLM-L6-v2 only)
  encoder   batched          all sentences in one call (forward passes of encode_batch_size)
  pipeline  batch of 1       the whole scoring path (normalise, embed, score, lexicon), item by item
  pipeline  batched          the whole path, all items in one call
  lexicon   10k-char item    profanity + blocklist matching alone on a MAX_CHARS text (items/s)
  http      sequential x1    one item per POST /moderate, one request at a time
  http      1 request x64    64 items in one request
  http      concurrent x1    16 clients, one item per request (BentoML merges their windows)

Prints a table and writes bench/results/text.json (with the load average before and after:
other work on the machine inflates the figures).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from modgate.policy import DEFAULT_POLICY_DIR, load_policy
from modgate.wire import TextItem
from services.text.config import TextSettings
from services.text.encoder import Encoder, load_text_encoder
from services.text.models import resolve_model
from services.text.normalise import WordSegmenter, fold
from services.text.pipeline import PolicyBundle, TextModerator
from services.text.scorer import scorer_for_policy
from services.text.usem import resolve_usem

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
HELDOUT = REPO / "services" / "text" / "data" / "legacy_heldout.tsv"


def load_labelled(path: Path = HELDOUT) -> list[tuple[str, frozenset[str]]]:
    """(text, categories) per `label<TAB>text` line; "benign" is no category, "a,b" two."""
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            label, text = line.split("\t", 1)
            rows.append((text, frozenset() if label == "benign" else frozenset(label.split(","))))
    return rows


LABELLED = load_labelled()


def median_rate(run: Callable[[], object], items: int, repeats: int, name: str = "") -> dict[str, float]:
    run()  # warm-up
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    seconds = statistics.median(times)
    row = {"items": items, "median_s": round(seconds, 4), "items_per_s": round(items / seconds, 1)}
    if name:
        print(f"  {name}: {row['items_per_s']} items/s", file=sys.stderr, flush=True)
    return row


CONFIGS = ("before", "after")


def _configured(config: str, threads: int) -> tuple[Encoder, TextModerator, PolicyBundle]:
    policy = load_policy(DEFAULT_POLICY_DIR / ("default.yaml" if config == "before" else "multilingual.yaml"))
    if config == "before":
        encoder = load_text_encoder("minilm", minilm=resolve_model(), usem=None, threads=threads)
        moderator = TextModerator(segmenter=WordSegmenter(encoder.vocabulary()), sentences=False)
    else:
        kind = TextSettings.model_fields["encoder"].default
        encoder = load_text_encoder(kind, minilm=resolve_model(), usem=resolve_usem(), threads=threads)
        moderator = TextModerator(
            segmenter=WordSegmenter(encoder.vocabulary()),
            scorers=lambda p: scorer_for_policy(p, encoder_kind=kind, encoder_identity=encoder.identity),
        )
    return encoder, moderator, moderator.build_policy(policy, encoder.encode)


def in_process(repeats: int, threads: int, config: str) -> dict[str, dict[str, float]]:
    encoder, moderator, bundle = _configured(config, threads)
    texts = [moderator.view(s) for s, _ in LABELLED]
    items = [TextItem(id=str(i), text=s, source="caption") for i, (s, _) in enumerate(LABELLED)]
    long_text = (" ".join(s for s, _ in LABELLED) * 3)[: moderator.max_chars]
    lexicon_runs = 20
    cases: dict[str, tuple[Callable[[], object], int]] = {
        "encoder batch of 1": (lambda: [encoder.encode([t]) for t in texts], len(texts)),
        "encoder batched": (lambda: encoder.encode(texts), len(texts)),
        "pipeline batch of 1": (
            lambda: [moderator.moderate([i], bundle, encoder.encode) for i in items],
            len(items),
        ),
        "pipeline batched": (lambda: moderator.moderate(items, bundle, encoder.encode), len(items)),
        "lexicon 10k-char item": (
            lambda: [bundle.lexicon.find(fold(long_text)) for _ in range(lexicon_runs)],
            lexicon_runs,
        ),
    }
    return {
        f"{config} {name}": median_rate(run, n, repeats, f"{config} {name}")
        for name, (run, n) in cases.items()
    }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def running_text_service(threads: int, config: str = "after") -> Iterator[str]:
    """`bentoml serve` the text service on a free port for the block; yields its URL."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    home = tempfile.mkdtemp(prefix="bench-text-bentoml-")
    env = {
        **os.environ,
        # Own BENTOML_HOME: another `bentoml serve` starting on this machine wipes the shared
        # Prometheus directory under ~/bentoml, and with it the batch-size histogram read here.
        "BENTOML_HOME": home,
        "OTEL_SDK_DISABLED": "true",
        "MODGATE_DEVICE": "cpu",
        "MODGATE_TEXT_THREADS": str(threads),
    }
    if config == "before":
        # Only the default policy: a service on MiniLM alone refuses the multilingual policy's scorer.
        policies = Path(tempfile.mkdtemp(prefix="bench-text-policy-"))
        shutil.copy(DEFAULT_POLICY_DIR / "default.yaml", policies / "default.yaml")
        env.update(MODGATE_TEXT_ENCODER="minilm", MODGATE_POLICY_DIR=str(policies))
    bentoml = str(Path(sys.executable).with_name("bentoml"))
    command = [bentoml, "serve", "services.text.service:Text", "--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(
        command,
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("text service did not start")
            time.sleep(0.5)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        shutil.rmtree(home, ignore_errors=True)


def over_http(repeats: int, threads: int, config: str) -> dict[str, dict[str, float]]:
    with running_text_service(threads, config) as url:
        sentences = [s for s, _ in LABELLED]
        with httpx.Client(base_url=url, timeout=120) as client:

            def post(texts: list[str]) -> None:
                body = {
                    "policy": "default" if config == "before" else "multilingual",
                    "items": [{"id": str(i), "text": t, "source": "caption"} for i, t in enumerate(texts)],
                }
                response = client.post("/moderate", json=body)
                response.raise_for_status()

            def concurrent() -> None:
                with ThreadPoolExecutor(max_workers=16) as pool:
                    list(pool.map(lambda s: post([s]), sentences))

            results = {
                f"{config} http sequential x1": median_rate(
                    lambda: [post([s]) for s in sentences],
                    len(sentences),
                    repeats,
                    f"{config} http sequential x1",
                ),
                f"{config} http 1 request x64": median_rate(
                    lambda: post(sentences[:64]), 64, repeats, f"{config} http 1 request x64"
                ),
            }
            before = _embed_batches(client)
            name = f"{config} http concurrent x1"
            results[name] = median_rate(concurrent, len(sentences), repeats, name)
            after = _embed_batches(client)
            runs = repeats + 1
            results[name]["embed_calls_per_run"] = round((after[0] - before[0]) / runs, 1)
            results[name]["requests_per_embed_batch"] = round(
                (after[1] - before[1]) / max(after[0] - before[0], 1), 2
            )
        return results


def _embed_batches(client: httpx.Client) -> tuple[float, float]:
    """(batches, requests) so far in BentoML's adaptive-batch histogram of the embed API."""
    count = total = 0.0
    for line in client.get("/metrics").text.splitlines():
        if 'method_name="embed"' in line and line.startswith("bentoml_service_adaptive_batch_size_"):
            value = float(line.rsplit(" ", 1)[1])
            if re.match(r"bentoml_service_adaptive_batch_size_count", line):
                count = value
            elif re.match(r"bentoml_service_adaptive_batch_size_sum", line):
                total = value
    return count, total


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=min(4, os.cpu_count() or 1))
    parser.add_argument("--no-http", action="store_true", help="skip the bentoml serve measurements")
    args = parser.parse_args()

    load_before = os.getloadavg()
    results: dict[str, dict[str, float]] = {}
    for config in CONFIGS:
        results.update(in_process(args.repeats, args.threads, config))
    if not args.no_http:
        for config in CONFIGS:
            results.update(over_http(args.repeats, args.threads, config))
    load_after = os.getloadavg()

    print(f"text service throughput (median of {args.repeats}, {args.threads} torch threads, CPU)")
    print(f"{'configuration':<31} {'items':>6} {'median s':>9} {'items/s':>9}")
    for name, row in results.items():
        print(f"{name:<31} {row['items']:>6} {row['median_s']:>9.3f} {row['items_per_s']:>9.1f}")
    for config in CONFIGS:
        concurrent = results.get(f"{config} http concurrent x1")
        if concurrent:
            print(
                f"{config} concurrent: {concurrent['embed_calls_per_run']} embedding batches per run of "
                f"{concurrent['items']} requests "
                f"({concurrent['requests_per_embed_batch']} requests per batch)"
            )
    for name in [n for n in results if n.startswith("after ")]:
        twin = "before " + name.removeprefix("after ")
        if twin in results:
            ratio = results[name]["items_per_s"] / results[twin]["items_per_s"]
            print(f"after/before {name.removeprefix('after '):<24} {ratio:.2f}x items/s")
    RESULTS.mkdir(parents=True, exist_ok=True)
    record: dict[str, Any] = {
        "benchmark": "text",
        "workload": f"{len(LABELLED)} short sentences ({HELDOUT.relative_to(REPO)}), default policy",
        "repeats": args.repeats,
        "threads": args.threads,
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "cpu_count": os.cpu_count(),
        "machine": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "load_average_before": load_before,
        "load_average_after": load_after,
        "results": results,
    }
    path = RESULTS / "text.json"
    path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
