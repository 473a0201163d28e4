"""Speech transcription speed per engine on this CPU: `python -m bench.speech [--repeats N]`.

Every configuration runs the service's own pipeline (VAD -> packed <=30 s chunks -> engine),
in this process, on the same ~42 s espeak-ng track (12 sentences, 0.8 s pauses: speech-dense,
the expensive case), and on 10 minutes of silence (the cheap case: VAD only). All models are
loaded first and then run round-robin (``--repeats`` rounds after one warm-up run each), so
load from elsewhere hits every configuration alike; the median is reported:

  s/audio-min   seconds of wall time per minute of audio (lower is better)
  RTF           real-time factor, wall time / audio duration
  cpu s/min     CPU seconds (all threads of this process) per minute of audio: what the work
                costs in cores; less distorted than wall time when other processes compete
                for the CPU (spinning OpenMP threads still inflate it somewhat)
  WER           word error rate against the script (a sanity check, not a quality study)

Configurations (one invocation, same machine, same threads):
  faster-whisper int8  tiny.en   the default
  openai-whisper fp32  tiny.en   the same weights, converted to PyTorch
  faster-whisper int8  base      multilingual
  openai-whisper fp32  base      (skip the base rows with --tiny-only)

Prints a table and writes bench/results/speech.json. Other work on the machine inflates the
figures; the JSON records the load average before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from modgate.tools.mediagen import SENTENCES, SR, speech_track
from modgate.tools.wer import word_error_rate
from modgate.wire import SpeechResult
from services.speech.audio import PcmAudio
from services.speech.config import SpeechSettings
from services.speech.pipeline import Transcriber, build_transcriber

RESULTS = Path(__file__).resolve().parent / "results"

CONFIGS: list[dict[str, str]] = [
    {"engine": "faster-whisper", "model": "tiny.en", "compute_type": "int8"},
    {"engine": "openai-whisper", "model": "tiny.en", "compute_type": "fp32"},
    {"engine": "faster-whisper", "model": "base", "compute_type": "int8"},
    {"engine": "openai-whisper", "model": "base", "compute_type": "fp32"},
]


def settings_for(config: dict[str, str], threads: int) -> SpeechSettings:
    return SpeechSettings(
        engine=config["engine"],  # type: ignore[arg-type]
        model=config["model"],
        model_path=None,
        compute_type=config["compute_type"] if config["engine"] == "faster-whisper" else "int8",
        threads=threads,
        beam_size=1,
        device="cpu",
        multilingual_model="",
    )


@dataclass
class Runs:
    config: dict[str, str]
    transcriber: Transcriber
    load_s: float
    walls: list[float] = field(default_factory=list)
    cpus: list[float] = field(default_factory=list)
    silence_walls: list[float] = field(default_factory=list)
    result: SpeechResult | None = None
    silent: SpeechResult | None = None


def run_once(transcriber: Transcriber, audio: PcmAudio) -> tuple[float, float, SpeechResult]:
    """(wall seconds, CPU seconds of this process, result) of one transcription."""
    wall_start, cpu_start = time.perf_counter(), time.process_time()
    result = transcriber.transcribe(audio)
    return time.perf_counter() - wall_start, time.process_time() - cpu_start, result


def summarise(runs: Runs, speech: PcmAudio, silence: PcmAudio) -> dict[str, Any]:
    assert runs.result is not None and runs.silent is not None
    wall = statistics.median(runs.walls)
    text = " ".join(s.text for s in runs.result.segments)
    return {
        **runs.config,
        "engine_label": runs.transcriber.model.engine,
        "model_name": runs.transcriber.model.name,
        "model_version": runs.transcriber.model.version,
        "load_s": round(runs.load_s, 2),
        "audio_s": speech.seconds,
        "speech_s": runs.result.speech_seconds,
        "wall_s_runs": [round(w, 3) for w in runs.walls],
        "wall_s_median": round(wall, 3),
        "s_per_audio_min": round(wall / speech.seconds * 60.0, 3),
        "rtf": round(wall / speech.seconds, 4),
        "cpu_s_runs": [round(c, 3) for c in runs.cpus],
        "cpu_s_per_audio_min": round(statistics.median(runs.cpus) / speech.seconds * 60.0, 3),
        "wer": round(word_error_rate(" ".join(SENTENCES * 2), text), 4),
        "silence_audio_s": silence.seconds,
        "silence_s_per_audio_min": round(statistics.median(runs.silence_walls) / silence.seconds * 60.0, 4),
        "silence_segments": len(runs.silent.segments),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per configuration (median)")
    parser.add_argument("--threads", type=int, default=SpeechSettings().threads, help="model threads")
    parser.add_argument("--tiny-only", action="store_true", help="skip the base model rows")
    parser.add_argument("--faster-only", action="store_true", help="skip the openai-whisper rows")
    args = parser.parse_args(argv)

    track, _ = speech_track(SENTENCES * 2, lead_s=1.0, gap_s=0.8, tail_s=1.0)
    speech = PcmAudio.from_array(track)
    silence = PcmAudio.from_array(np.zeros(600 * SR, np.int16))
    configs = [
        c
        for c in CONFIGS
        if not (args.tiny_only and c["model"] == "base")
        and not (args.faster_only and c["engine"] == "openai-whisper")
    ]
    load_before = os.getloadavg()
    all_runs = []
    for config in configs:
        print(f"loading {config['engine']} {config['compute_type']} {config['model']} ...", file=sys.stderr)
        started = time.perf_counter()
        transcriber = build_transcriber(settings_for(config, args.threads))
        all_runs.append(Runs(config, transcriber, time.perf_counter() - started))
        run_once(transcriber, speech)  # warm-up
    # Round-robin, so a burst of load from elsewhere hits every configuration alike.
    for round_no in range(args.repeats):
        print(f"round {round_no + 1}/{args.repeats}", file=sys.stderr)
        for runs in all_runs:
            wall, cpu, runs.result = run_once(runs.transcriber, speech)
            runs.walls.append(wall)
            runs.cpus.append(cpu)
            silence_wall, _, runs.silent = run_once(runs.transcriber, silence)
            runs.silence_walls.append(silence_wall)
    rows = [summarise(runs, speech, silence) for runs in all_runs]
    load_after = os.getloadavg()

    print(
        f"\nspeech: {speech.seconds:.1f} s espeak-ng track, {args.threads} threads, median of {args.repeats}"
    )
    header = f"{'engine':<22}{'model':<10}{'s/audio-min':>12}{'RTF':>8}{'WER':>7}{'load s':>8}"
    header += f"{'cpu s/min':>11}{'silence s/min':>15}"
    print(header)
    print("-" * len(header))
    for row in rows:
        print(
            f"{row['engine_label']:<22}{row['model']:<10}{row['s_per_audio_min']:>12.2f}{row['rtf']:>8.3f}"
            f"{row['wer']:>7.1%}{row['load_s']:>8.1f}{row['cpu_s_per_audio_min']:>11.2f}"
            f"{row['silence_s_per_audio_min']:>15.3f}"
        )
    print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f} ({os.cpu_count()} cpus)")

    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "speech.json"
    out.write_text(
        json.dumps(
            {
                "benchmark": "speech",
                "machine": {
                    "platform": platform.platform(),
                    "processor": platform.processor(),
                    "cpus": os.cpu_count(),
                    "threads": args.threads,
                    "loadavg_before": load_before,
                    "loadavg_after": load_after,
                },
                "repeats": args.repeats,
                "results": rows,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
