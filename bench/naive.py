"""The naive baseline: the same moderation job as one sequential script, no system around it.

    python -m bench.naive --clip CLIP.mp4 [--reps N] [--device cpu|cuda] [--json OUT]

What a first prototype would do, step after step in one process:

1. decode EVERY video frame with PyAV and convert it to RGB, keeping one per second (1 fps);
   decode the whole audio track (16 kHz mono) and read the subtitle cues;
2. openai-whisper fp32 on the whole audio (`whisper.transcribe` with its defaults), using the
   speech service's real tiny.en weights (services/speech/models.py resolves and sha256-checks
   them; services/speech/ct2_torch.py turns them into an openai-whisper model);
3. OpenCLIP ViT-B-32 (random weights, seed 0, as the vision service runs here without a
   checkpoint) on the kept frames one at a time, with open_clip's own preprocessing, against
   the policy's prompts;
4. MiniLM (all-MiniLM-L6-v2, the text service's weights) on every text item one at a time
   (title, description, hashtags, subtitles, transcript segments) against the policy's
   exemplars; then a decision from the max score and the policy's thresholds.

Models are loaded once before the timed runs (reported separately as load_s), so the timed
figure is comparable with a warm service stack. Torch uses its default threads (all cores).
Prints and writes JSON: per-run stage times (decode, speech, vision, text) and their medians,
peak RSS, and what was found (decision, transcript, frames).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

SAMPLE_FPS = 1.0
AUDIO_RATE = 16_000


@dataclass
class Decoded:
    frames: list[tuple[float, Any]]  # (time_s, PIL image) at SAMPLE_FPS
    frames_decoded: int
    audio: np.ndarray  # float32 16 kHz mono
    subtitles: list[str]
    duration_s: float


@dataclass
class Models:
    whisper: Any
    clip: Any
    clip_preprocess: Any
    prompt_embeddings: Any  # (P, D) torch, unit norm
    prompt_owner: list[str]  # category or "neutral", per prompt row
    minilm: Any
    exemplar_embeddings: np.ndarray  # (E, 384) unit norm
    exemplar_owner: list[str]
    device: str
    load_s: float
    thresholds: dict[str, tuple[float, float]] = field(default_factory=dict)  # review, block


def decode(path: Path) -> Decoded:
    """Every video frame decoded and converted to RGB; then the audio; then the subtitles."""
    import av

    frames: list[tuple[float, Any]] = []
    decoded = 0
    next_t = 0.0
    with av.open(str(path)) as container:
        duration_s = (container.duration or 0) / 1_000_000
        for frame in container.decode(video=0):
            image = frame.to_image()  # full-resolution RGB, for every frame
            decoded += 1
            t = float(frame.pts * frame.time_base) if frame.pts is not None else 0.0
            if t + 1e-3 >= next_t:
                frames.append((t, image))
                next_t += 1.0 / SAMPLE_FPS
    chunks = []
    with av.open(str(path)) as container:
        resampler = av.AudioResampler(format="flt", layout="mono", rate=AUDIO_RATE)
        for frame in container.decode(audio=0):
            chunks.extend(out.to_ndarray().reshape(-1) for out in resampler.resample(frame))
        chunks.extend(out.to_ndarray().reshape(-1) for out in resampler.resample(None))
    audio = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)
    subtitles = []
    with av.open(str(path)) as container:
        if container.streams.subtitles:
            stream = container.streams.subtitles[0]
            for packet in container.demux(stream):
                if not packet.size:
                    continue
                for rect in stream.codec_context.decode2(packet) or ():
                    if rect.type != b"ass":
                        continue
                    text = rect.ass.decode("utf-8", "replace").split(",", 8)[-1]
                    if text.strip():
                        subtitles.append(text.strip())
    return Decoded(frames, decoded, audio, subtitles, duration_s)


def load_models(device: str) -> Models:
    import open_clip
    import torch

    from modgate.policy import load_policies
    from services.speech.config import SpeechSettings
    from services.speech.ct2_torch import load_ct2_as_whisper
    from services.speech.models import resolve
    from services.text.models import load_encoder, resolve_model

    started = time.perf_counter()
    policy = load_policies()["default"]

    weights = resolve(SpeechSettings(engine="openai-whisper", model="tiny.en", model_path=None))
    whisper_model = load_ct2_as_whisper(weights.path).to(device).eval()

    torch.manual_seed(0)  # the vision service's random init (services/vision/models.py RANDOM_SEED)
    clip, _, preprocess = open_clip.create_model_and_transforms(
        "ViT-B-32", device=device, pretrained_image=False, pretrained_text=False
    )
    clip.eval()
    tokenizer = open_clip.get_tokenizer("ViT-B-32")
    prompts, owners = [], []
    for name, rule in policy.vision_categories().items():
        prompts += rule.prompts
        owners += [name] * len(rule.prompts)
    prompts += policy.neutral.vision_prompts
    owners += ["neutral"] * len(policy.neutral.vision_prompts)
    with torch.inference_mode():
        prompt_embeddings = clip.encode_text(tokenizer(prompts).to(device), normalize=True)

    minilm = load_encoder(resolve_model(), device=device, threads=torch.get_num_threads())
    exemplars, ex_owners = [], []
    for name, text_rule in policy.text_categories().items():
        exemplars += text_rule.exemplars
        ex_owners += [name] * len(text_rule.exemplars)
    exemplars += policy.neutral.text_exemplars
    ex_owners += ["neutral"] * len(policy.neutral.text_exemplars)
    exemplar_embeddings = minilm.encode(exemplars, normalize_embeddings=True, convert_to_numpy=True)
    return Models(
        whisper=whisper_model,
        clip=clip,
        clip_preprocess=preprocess,
        prompt_embeddings=prompt_embeddings,
        prompt_owner=owners,
        minilm=minilm,
        exemplar_embeddings=np.asarray(exemplar_embeddings, dtype=np.float32),
        exemplar_owner=ex_owners,
        device=device,
        load_s=time.perf_counter() - started,
        thresholds={n: (c.thresholds.review, c.thresholds.block) for n, c in policy.categories.items()},
    )


def transcribe(models: Models, audio: np.ndarray) -> list[dict[str, Any]]:
    import whisper

    result = whisper.transcribe(models.whisper, audio, language="en", fp16=False, verbose=None)
    return [{"start": s["start"], "end": s["end"], "text": s["text"].strip()} for s in result["segments"]]


def score_frames(models: Models, frames: list[tuple[float, Any]]) -> dict[str, float]:
    """One frame at a time: preprocess, encode, softmax over all prompts, category share."""
    import torch

    best: dict[str, float] = {}
    owners = models.prompt_owner
    with torch.inference_mode():
        for _, image in frames:
            x = models.clip_preprocess(image).unsqueeze(0).to(models.device)
            embedding = models.clip.encode_image(x, normalize=True)
            probs = (100.0 * embedding @ models.prompt_embeddings.T).softmax(dim=-1)[0].cpu().numpy()
            shares: dict[str, float] = {}
            for owner, p in zip(owners, probs, strict=True):
                if owner != "neutral":
                    shares[owner] = shares.get(owner, 0.0) + float(p)
            for name, share in shares.items():
                best[name] = max(best.get(name, 0.0), share)
    return best


def score_texts(models: Models, texts: list[str]) -> dict[str, float]:
    """One item at a time: embed, nearest exemplar per category vs the nearest neutral one."""
    best: dict[str, float] = {}
    owners = np.asarray(models.exemplar_owner)
    neutral = owners == "neutral"
    for text in texts:
        vector = models.minilm.encode([text], normalize_embeddings=True, convert_to_numpy=True)[0]
        sims = models.exemplar_embeddings @ vector
        baseline = float(sims[neutral].max())
        for name in set(models.exemplar_owner) - {"neutral"}:
            top = float(sims[owners == name].max())
            score = 1.0 / (1.0 + np.exp(-(top - baseline) / 0.05))
            best[name] = max(best.get(name, 0.0), float(score) if top > 0.45 else 0.0)
    return best


def decide(models: Models, *scores: dict[str, float]) -> tuple[str, dict[str, float]]:
    fused: dict[str, float] = {}
    for table in scores:
        for name, value in table.items():
            fused[name] = max(fused.get(name, 0.0), value)
    decision = "ALLOW"
    for name, value in fused.items():
        review, block = models.thresholds.get(name, (0.5, 0.85))
        if value >= block:
            decision = "BLOCK"
        elif value >= review and decision == "ALLOW":
            decision = "REVIEW"
    return decision, fused


def run_once(models: Models, path: Path, extra_texts: list[str]) -> dict[str, Any]:
    timings: dict[str, float] = {}
    started = time.perf_counter()
    decoded = decode(path)
    timings["decode"] = time.perf_counter() - started

    t = time.perf_counter()
    segments = transcribe(models, decoded.audio)
    timings["speech"] = time.perf_counter() - t

    t = time.perf_counter()
    visual = score_frames(models, decoded.frames)
    timings["vision"] = time.perf_counter() - t

    t = time.perf_counter()
    texts = [*extra_texts, *decoded.subtitles, *(s["text"] for s in segments if s["text"])]
    textual = score_texts(models, texts)
    timings["text"] = time.perf_counter() - t

    decision, fused = decide(models, textual)  # random CLIP weights: visual kept out, as the system does
    timings["total"] = time.perf_counter() - started
    return {
        "timings_s": {k: round(v, 3) for k, v in timings.items()},
        "decision": decision,
        "top_categories": dict(sorted(fused.items(), key=lambda kv: -kv[1])[:3]),
        "visual_top": dict(sorted(visual.items(), key=lambda kv: -kv[1])[:3]),
        "frames_decoded": decoded.frames_decoded,
        "frames_scored": len(decoded.frames),
        "text_items": len(texts),
        "transcript": " ".join(s["text"] for s in segments),
        "audio_s": round(len(decoded.audio) / AUDIO_RATE, 3),
    }


def run(path: Path, *, reps: int, device: str, extra_texts: list[str]) -> dict[str, Any]:
    import torch

    models = load_models(device)
    runs = [run_once(models, path, extra_texts) for _ in range(reps)]
    stages = runs[0]["timings_s"].keys()
    medians = {s: round(statistics.median(r["timings_s"][s] for r in runs), 3) for s in stages}
    return {
        "benchmark": "naive",
        "clip": str(path),
        "device": device,
        "torch_threads": torch.get_num_threads(),
        "reps": reps,
        "load_s": round(models.load_s, 2),
        "median_s": medians,
        "runs": runs,
        # ru_maxrss is in KiB on Linux.
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.naive", description=__doc__.splitlines()[0])
    parser.add_argument("--clip", type=Path, required=True)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--text", action="append", default=[], help="extra text item (title...)")
    parser.add_argument("--json", type=Path, help="write the result here")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    result = run(args.clip, reps=args.reps, device=args.device, extra_texts=args.text)
    med = result["median_s"]
    print(
        f"naive {args.clip.name}: total {med['total']:.2f} s (decode {med['decode']:.2f}, speech "
        f"{med['speech']:.2f}, vision {med['vision']:.2f}, text {med['text']:.2f}), median of {args.reps}; "
        f"decision {result['runs'][-1]['decision']}, peak RSS {result['peak_rss_mb']:.0f} MB",
        file=sys.stderr,
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    else:
        print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
