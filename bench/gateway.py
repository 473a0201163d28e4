"""What the gateway's orchestration costs: `python -m bench.gateway [--repeats N] [--no-stack]`.

Measured in one invocation on this machine (medians):

  fusion      the pure decision step for a large request: 64 frames x every visual category,
              40 text items, 12 transcript segments (default policy)
  text-only   the same text-only request (title + description + 3 hashtags) sent
                (a) straight to the text service (POST /moderate, pooled httpx) — the baseline
                (b) through the gateway (gRPC Moderate -> validate -> fan-out -> fusion -> Verdict)
              overhead = (b) - (a)
  video       the demo's threat video through the gateway (split + speech + vision + text +
              transcript scoring + fusion), end to end

Starts the three services and a gateway on free ports (real processes; tracing off) and stops
them after. Writes bench/results/gateway.json with the load average (other work on the machine
inflates every figure).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from gateway.fusion import FusionInput, ModalityOutcome, ScoredText, State, fuse
from modgate.client import ModerationClient
from modgate.policy import Modality, load_policies
from modgate.tools.samples import threat_video
from modgate.tools.stack import Stack, StackConfig, free_port
from modgate.wire import FrameScore, ModelInfo, TextItem, TextItemResult, TextRequest

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
TITLE = "Road trip highlights"
DESCRIPTION = "We drove along the coast for three days and stopped at every small town market."
HASHTAGS = ["travel", "roadtrip", "coast"]


def median_ms(run: Callable[[], Any], repeats: int, warmup: int = 2) -> dict[str, float]:
    for _ in range(warmup):
        run()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append((time.perf_counter() - started) * 1000)
    return {
        "median_ms": round(statistics.median(times), 3),
        "p90_ms": round(sorted(times)[int(0.9 * (len(times) - 1))], 3),
        "n": repeats,
    }


def fusion_input() -> FusionInput:
    policy = load_policies()["default"]
    model = ModelInfo(name="m", version="v")
    visual = list(policy.vision_categories())
    frames = [
        FrameScore(
            index=i,
            timestamp_ms=i * 1000,
            scores={c: (i * 37 % 100) / 100 for c in visual},
            best_prompts={c: "p" for c in visual},
        )
        for i in range(64)
    ]
    texts = []
    for i in range(52):
        source = "transcript" if i < 12 else "caption"
        item = TextItem(
            id=f"t{i}", text=f"item {i} " * 8, source=source, start_ms=i * 500, end_ms=i * 500 + 400
        )
        scores = {c: (i * 13 % 100) / 200 for c in policy.text_categories()}
        texts.append(
            ScoredText(item=item, result=TextItemResult(id=item.id, scores=scores, matches=[]), model=model)
        )
    outcomes = {m: ModalityOutcome(m, State.OK) for m in Modality}
    return FusionInput(policy, outcomes, texts=texts, frames=frames, frame_model=model)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--no-stack", action="store_true", help="fusion only (no processes)")
    args = parser.parse_args()
    results: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "load_before": os.getloadavg(),
    }
    inp = fusion_input()
    results["fusion_large_request"] = median_ms(lambda: fuse(inp), max(args.repeats, 200))
    print(f"fusion (64 frames, 52 text items): {results['fusion_large_request']['median_ms']:.2f} ms median")

    if not args.no_stack:
        with tempfile.TemporaryDirectory() as tmp:
            ports = {
                name: free_port() for name in ("gateway", "metrics", "speech", "vision", "text", "traces")
            }
            quiet = {"OTEL_SDK_DISABLED": "true"}
            stack = Stack(
                StackConfig(
                    ports=ports,
                    home=Path(tmp),
                    trace_store=False,
                    env={name: quiet for name in ("speech", "vision", "text", "gateway")},
                )
            )
            print("starting speech, vision, text and a gateway (model loading)...", file=sys.stderr)
            stack.start(say=lambda line: print(line, file=sys.stderr))
            try:
                results.update(measure_stack(stack, ports, Path(tmp), args.repeats))
            finally:
                stack.stop()
    results["load_after"] = os.getloadavg()
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "gateway.json").write_text(json.dumps(results, indent=2))
    print(
        f"wrote {RESULTS / 'gateway.json'} (load average {results['load_before']} -> {results['load_after']})"
    )
    return 0


def measure_stack(stack: Stack, ports: dict[str, int], tmp: Path, repeats: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    items = [
        TextItem(id="title", text=TITLE, source="title"),
        TextItem(id="description", text=DESCRIPTION, source="description"),
        TextItem(id="hashtags", text=" ".join(f"#{h}" for h in HASHTAGS), source="hashtag"),
    ]
    body = TextRequest(items=items, policy="default").model_dump(mode="json", exclude_none=True)
    with httpx.Client(base_url=f"http://127.0.0.1:{ports['text']}", trust_env=False, timeout=30) as http:

        def direct() -> None:
            http.post("/moderate", json=body).raise_for_status()

        out["text_only_direct_http"] = median_ms(direct, repeats)
    with ModerationClient(stack.gateway_target, timeout_s=60) as client:

        def via_gateway() -> None:
            client.moderate_text(title=TITLE, description=DESCRIPTION, hashtags=HASHTAGS)

        out["text_only_via_gateway"] = median_ms(via_gateway, repeats)
        overhead = out["text_only_via_gateway"]["median_ms"] - out["text_only_direct_http"]["median_ms"]
        out["gateway_overhead_ms"] = round(overhead, 2)
        print(
            f"text-only: direct {out['text_only_direct_http']['median_ms']:.1f} ms, via gateway "
            f"{out['text_only_via_gateway']['median_ms']:.1f} ms -> overhead {overhead:.1f} ms (median)"
        )
        video = threat_video(tmp / "threat.mp4")
        out["threat_video_verdict"] = median_ms(
            lambda: client.moderate_file(video.path), max(3, repeats // 6), 1
        )
        out["threat_video_seconds"] = round(video.duration_s, 2)
        print(
            f"video ({video.duration_s:.1f} s, speech + 9 frames + subtitle): "
            f"{out['threat_video_verdict']['median_ms']:.0f} ms median end to end"
        )
    return out


if __name__ == "__main__":
    sys.exit(main())
