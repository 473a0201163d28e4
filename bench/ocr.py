"""On-screen text (OCR) cost: `python -m bench.ocr [--reps N] [--e2e-reps N] [--no-e2e]`.

1. Text detection per 720p frame without text, one core: the bench clip's picture (panning
   noise texture, frame marker, moving box) downscaled to the gateway's OCR frame size (960)
   through a JPEG as the gateway sends it, detected at MODGATE_VISION_OCR_DET_SIDE (640); the
   wall and CPU time per frame, median of --reps.
2. Recognition per box: the same frame with four lines of text; the boxes detected once, then
   recognized --reps times; per box.
3. The 60 s bench clip (bench.workloads) through one real local stack (modgate.tools.stack,
   as bench.e2e) under two policies that differ only in ocr.enabled, requests alternating
   between them after a warm-up of each: p50/p95 wall at the client, the vision stage, and the
   ratio of the p50s (target: OCR on <= 1.4x off). Frames go at 960 px with OCR on, 336 off.

Prints the figures and writes bench/results/ocr.json with the machine's load average before
and after: other work on a shared machine inflates every figure (quote the CPU times too).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.workloads import RESULTS
from gateway.upstreams.services import JPEG_QUALITY
from modgate.tools.mediagen.ocrset import as_sent

DET_TEXT = (
    "Double your bitcoin in 24 hours",
    "Link in bio for the full menu",
    "Subscribe for more recipes",
    "Limited offer 90% off today",
)


def say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _timed(call: Any, reps: int) -> dict[str, float]:
    walls, cpus = [], []
    call()  # warm-up (ONNX Runtime allocates on the first run)
    for _ in range(reps):
        wall, cpu = time.perf_counter(), time.process_time()
        call()
        walls.append((time.perf_counter() - wall) * 1000)
        cpus.append((time.process_time() - cpu) * 1000)
    return {
        "wall_ms_p50": round(statistics.median(walls), 1),
        "cpu_ms_p50": round(statistics.median(cpus), 1),
    }


def engine_costs(reps: int) -> dict[str, Any]:
    from gateway.config import GatewayConfig
    from modgate.tools.mediagen import MediaSpec, draw_frame
    from modgate.tools.mediagen.overlay import TextStyle, draw_text
    from services.vision.config import VisionSettings
    from services.vision.ocr.engine import OcrEngine
    from services.vision.ocr.models import resolve_ocr_models

    settings = VisionSettings(allow_uncalibrated=True)
    side = GatewayConfig().split_options(ocr=True).frame_max_side
    engine = OcrEngine(resolve_ocr_models(), det_side=settings.ocr_det_side, threads=1)
    picture = draw_frame(12, MediaSpec(width=1280, height=720, fps=30, duration_s=60.0, textured=True))
    plain = as_sent(picture, side, JPEG_QUALITY)
    boxes_without_text = len(engine.detect(plain))
    detect = _timed(lambda: engine.detect(plain), reps)
    with_text = picture
    for row, line in enumerate(DET_TEXT):
        with_text = draw_text(with_text, line, TextStyle(size_px=40, outline_px=2), (0.5, 0.35 + 0.13 * row))
    texty = as_sent(with_text, side, JPEG_QUALITY)
    boxes = engine.detect(texty)
    recognize = _timed(lambda: engine.recognize(texty, boxes), reps)
    read = [line.text for line in engine.recognize(texty, boxes)]
    per_box = {k: round(v / max(1, len(boxes)), 1) for k, v in recognize.items()}
    report = {
        "frame_sent": list(plain.shape[1::-1]),
        "det_side": settings.ocr_det_side,
        "threads": 1,
        "detect_per_frame_without_text": {**detect, "boxes_found": boxes_without_text},
        "recognize_per_box": {**per_box, "boxes": len(boxes), "read": read},
    }
    say(
        f"detection, 720p frame without text -> {plain.shape[1]}x{plain.shape[0]}"
        f" at {settings.ocr_det_side}: "
        f"{detect['wall_ms_p50']} ms wall / {detect['cpu_ms_p50']} ms CPU ({boxes_without_text} boxes)"
    )
    say(
        f"recognition: {per_box['wall_ms_p50']} ms wall / {per_box['cpu_ms_p50']} ms CPU per box"
        f" ({len(boxes)} boxes)"
    )
    return report


def _policies(directory: Path) -> tuple[str, str]:
    from modgate.policy import DEFAULT_POLICY_DIR

    text = (DEFAULT_POLICY_DIR / "default.yaml").read_text(encoding="utf-8")
    (directory / "default.yaml").write_text(text, encoding="utf-8")
    off = text.replace("name: default", "name: default-no-ocr", 1).replace(
        "ocr:\n  enabled: true", "ocr:\n  enabled: false"
    )
    if "name: default-no-ocr" not in off or "enabled: false" not in off:
        raise RuntimeError("could not derive the OCR-off policy from the default policy")
    (directory / "default-no-ocr.yaml").write_text(off, encoding="utf-8")
    return "default", "default-no-ocr"


def _summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "p50": round(statistics.median(ordered), 1),
        "p95": round(ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))], 1),
        "n": len(ordered),
    }


def clip_on_off(reps: int) -> dict[str, Any]:
    from bench.e2e import running_stack, stack_config
    from bench.workloads import clip
    from modgate.client import ModerationClient

    workload = clip(60.0)
    assert workload.path is not None
    data = workload.path.read_bytes()
    with tempfile.TemporaryDirectory(prefix="bench-ocr-") as tmp:
        home = Path(tmp)
        policy_dir = home / "policies"
        policy_dir.mkdir()
        on, off = _policies(policy_dir)
        env = {
            name: {"MODGATE_POLICY_DIR": str(policy_dir)} for name in ("gateway", "speech", "vision", "text")
        }
        config = stack_config(home, device="cpu", trace_store=False, env=env)
        runs: dict[str, dict[str, list[float]]] = {p: {"wall_ms": [], "vision_ms": []} for p in (on, off)}
        seen: dict[str, dict[str, Any]] = {}
        with (
            running_stack(config, say) as stack,
            ModerationClient(stack.gateway_target, timeout_s=600) as client,
        ):
            for i in range(reps + 1):
                for policy in (on, off) if i % 2 == 0 else (off, on):
                    started = time.perf_counter()
                    verdict = client.moderate_bytes(data, policy=policy, **workload.request_fields())
                    wall = (time.perf_counter() - started) * 1000
                    visual = next(m for m in verdict.modalities if m.modality == 2)
                    seen[policy] = {
                        "frames_read": visual.frames_read,
                        "frames_with_text": visual.frames_with_text,
                    }
                    if i == 0:
                        continue  # warm-up of each policy
                    runs[policy]["wall_ms"].append(wall)
                    runs[policy]["vision_ms"].extend(
                        t.duration_ms for t in verdict.timings if t.stage == "vision"
                    )
                    say(f"  {policy}: {wall:.0f} ms")
    result: dict[str, Any] = {
        p: {"wall_ms": _summary(v["wall_ms"]), "vision_ms": _summary(v["vision_ms"]), **seen[p]}
        for p, v in runs.items()
    }
    result["p50_ratio_on_over_off"] = round(result[on]["wall_ms"]["p50"] / result[off]["wall_ms"]["p50"], 3)
    say(
        f"60 s clip p50: OCR on {result[on]['wall_ms']['p50']:.0f} ms,"
        f" off {result[off]['wall_ms']['p50']:.0f} ms "
        f"(x{result['p50_ratio_on_over_off']}; vision stage {result[on]['vision_ms']['p50']:.0f} vs "
        f"{result[off]['vision_ms']['p50']:.0f} ms; frames read {result[on]['frames_read']})"
    )
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--reps", type=int, default=20, help="timed detection / recognition runs")
    parser.add_argument("--e2e-reps", type=int, default=3, help="timed 60 s clip requests per policy")
    parser.add_argument("--no-e2e", action="store_true", help="engine costs only (no stack)")
    args = parser.parse_args(argv)
    report: dict[str, Any] = {"load_before": os.getloadavg()}
    report["engine"] = engine_costs(args.reps)
    if not args.no_e2e:
        report["clip_60s"] = clip_on_off(args.e2e_reps)
    report["load_after"] = os.getloadavg()
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "ocr.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
