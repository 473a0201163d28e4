"""Media splitter speed: `python -m bench.split [--runs N] [--duration S]`.

Times splitting a generated 60 s 720p30 H.264 (x264 veryfast, default GOP) + AAC clip with
each frame strategy, in process (split_media) and through the gateway's worker pool (adds
spawn-free IPC: the same call the server makes). The clip has a panning noise texture and
grain so it decodes like camera footage (bitrate: bench/README.md), and is cached under
bench/results/.
Prints a table of medians (wall seconds, and CPU seconds of the process: steadier on a busy
machine) and writes bench/results/split.json.

Then the cost of more streams: the same clip remuxed (packets copied, nothing re-encoded) with
its audio track twice, and with its video stream twice, split at the default fps=1 whole, as
the audio part (what speech waits for with audio first) and as the video part.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

from gateway.media.limits import FrameStrategy, MediaLimits, SplitOptions
from gateway.media.splitter import split_media
from gateway.media.worker import SplitWorkers
from modgate.tools.mediagen import MediaSpec, generate

RESULTS = Path(__file__).resolve().parent / "results"

CASES: list[tuple[str, SplitOptions]] = [
    ("fps=1 (default)", SplitOptions(strategy=FrameStrategy.FPS, frame_sample_fps=1.0)),
    ("keyframes", SplitOptions(strategy=FrameStrategy.KEYFRAMES, frame_sample_fps=1.0)),
    ("scene (probe 4/s)", SplitOptions(strategy=FrameStrategy.SCENE)),
    ("fps=0.1 (sparse)", SplitOptions(strategy=FrameStrategy.FPS, frame_sample_fps=0.1)),
]


def clip(duration_s: float) -> Path:
    spec = MediaSpec(
        width=1280,
        height=720,
        fps=30,
        duration_s=duration_s,
        audio="tone",
        textured=True,
        preset="veryfast",
        scene_changes_s=(duration_s / 3, 2 * duration_s / 3),
    )
    path = RESULTS / f"split-clip-720p30-{duration_s:g}s.mp4"
    if not path.exists():
        print(f"encoding the {duration_s:g} s 720p30 benchmark clip once (cached at {path}) ...")
        started = time.monotonic()
        tmp = path.with_suffix(".tmp.mp4")
        generate(spec, tmp)
        tmp.rename(path)
        print(f"  encoded in {time.monotonic() - started:.0f} s")
    return path


def time_raw_decode(path: Path, runs: int, threads: int) -> tuple[list[float], list[float]]:
    """Baseline: PyAV decoding every video frame and audio packet, nothing else."""
    import av

    seconds, cpu = [], []
    for _ in range(runs):
        started, cpu_started = time.perf_counter(), time.process_time()
        with av.open(str(path)) as container:
            video = container.streams.video[0]
            video.codec_context.thread_type = "AUTO"
            video.codec_context.thread_count = threads
            for _frame in container.decode(video, container.streams.audio[0]):
                pass
        seconds.append(time.perf_counter() - started)
        cpu.append(time.process_time() - cpu_started)
    return seconds, cpu


def time_direct(path: Path, options: SplitOptions, runs: int) -> tuple[list[float], list[float], Any]:
    seconds, cpu, media = [], [], None
    for _ in range(runs):
        started, cpu_started = time.perf_counter(), time.process_time()
        media = split_media(path, options, MediaLimits(decode_budget_s=600))
        seconds.append(time.perf_counter() - started)
        cpu.append(time.process_time() - cpu_started)
    return seconds, cpu, media


async def time_workers(path: Path, options: SplitOptions, runs: int) -> list[float]:
    workers = SplitWorkers(1)
    await workers.start()
    try:
        seconds = []
        for _ in range(runs):
            started = time.perf_counter()
            await workers.split(path, options, MediaLimits(decode_budget_s=600))
            seconds.append(time.perf_counter() - started)
        return seconds
    finally:
        await workers.close()


def remuxed(path: Path, *, audio_tracks: int, video_streams: int) -> Path:
    """`path` with its video stream and audio track copied video_streams / audio_tracks times."""
    import av

    target = path.with_name(f"{path.stem}-v{video_streams}-a{audio_tracks}.mp4")
    if target.exists():
        return target
    with av.open(str(path)) as source, av.open(str(target), mode="w") as out:
        video_in, audio_in = source.streams.video[0], source.streams.audio[0]
        copies = {video_in.index: [], audio_in.index: []}
        for stream, count in ((video_in, video_streams), (audio_in, audio_tracks)):
            copies[stream.index] = [out.add_stream_from_template(stream) for _ in range(count)]
        for packet in source.demux(video_in, audio_in):
            if packet.dts is None:
                continue
            for stream in copies[packet.stream.index]:
                packet.stream = stream
                out.mux(packet)
    return target


STREAM_CASES: list[tuple[str, SplitOptions]] = [
    ("whole", SplitOptions()),
    ("audio part", SplitOptions(video=False)),
    ("video part", SplitOptions(audio=False, subtitles=False)),
]


def time_streams(path: Path, runs: int) -> list[dict[str, Any]]:
    """Default sampling on 1 track, 2 audio tracks, 2 video streams: whole, audio and video parts."""
    rows = []
    for label, audio_tracks, video_streams in (
        ("1 audio + 1 video", 1, 1),
        ("2 audio tracks", 2, 1),
        ("2 video streams", 1, 2),
    ):
        clip_path = (
            path
            if audio_tracks == video_streams == 1
            else remuxed(path, audio_tracks=audio_tracks, video_streams=video_streams)
        )
        for part, options in STREAM_CASES:
            direct, cpu, media = time_direct(clip_path, options, runs)
            rows.append(
                {
                    "clip": label,
                    "part": part,
                    "median_s": round(statistics.median(direct), 3),
                    "runs_s": [round(s, 3) for s in direct],
                    "cpu_median_s": round(statistics.median(cpu), 3),
                    "audio_tracks": len(media.audio_tracks),
                    "frames_sampled": media.info.frames_sampled,
                    "video_frames_decoded": media.counters["video_frames_decoded"],
                }
            )
    return rows


def print_streams(rows: list[dict[str, Any]]) -> None:
    header = (
        f"{'clip':<20} {'part':<11} {'median s':>9} {'cpu s':>7} {'tracks':>7} {'frames':>7} {'decoded':>8}"
    )
    print("\n" + header)
    print("-" * len(header))
    for row in rows:
        print(
            f"{row['clip']:<20} {row['part']:<11} {row['median_s']:>9.2f} {row['cpu_median_s']:>7.2f} "
            f"{row['audio_tracks']:>7} {row['frames_sampled']:>7} {row['video_frames_decoded']:>8}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=float, default=60.0)
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = clip(args.duration)
    size = path.stat().st_size

    threads = CASES[0][1].decode_threads
    raw, raw_cpu = time_raw_decode(path, args.runs, threads)
    rows: list[dict[str, Any]] = [
        {
            "case": "baseline: decode all",
            "median_s": round(statistics.median(raw), 3),
            "runs_s": [round(s, 3) for s in raw],
            "cpu_median_s": round(statistics.median(raw_cpu), 3),
            "worker_pool_median_s": None,
            "x_realtime": round(args.duration / statistics.median(raw), 1),
            "frames_sampled": 0,
            "video_frames_decoded": round(args.duration * 30),
        }
    ]
    for name, options in CASES:
        direct, cpu, media = time_direct(path, options, args.runs)
        pooled = asyncio.run(time_workers(path, options, args.runs))
        median = statistics.median(direct)
        rows.append(
            {
                "case": name,
                "strategy": str(options.strategy),
                "frame_sample_fps": options.frame_sample_fps,
                "median_s": round(median, 3),
                "runs_s": [round(s, 3) for s in direct],
                "cpu_median_s": round(statistics.median(cpu), 3),
                "worker_pool_median_s": round(statistics.median(pooled), 3),
                "worker_pool_runs_s": [round(s, 3) for s in pooled],
                "x_realtime": round(args.duration / median, 1),
                "frames_sampled": media.info.frames_sampled,
                "video_frames_decoded": media.counters["video_frames_decoded"],
                "video_packets_skipped": media.counters["video_packets_skipped"],
                "audio_s": round(media.audio_duration_s, 3),
                "frame_shape": list(media.frames[0].image.shape) if media.frames else None,
            }
        )

    result = {
        "benchmark": "split",
        "clip": {
            "duration_s": args.duration,
            "size": "1280x720",
            "fps": 30,
            "video": "h264 (libx264 veryfast, default GOP 250)",
            "audio": "aac 48 kHz mono",
            "bytes": size,
            "mbit_per_s": round(size * 8 / args.duration / 1e6, 2),
        },
        "decode_threads": threads,
        "runs": args.runs,
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "load_avg_1m": round(os.getloadavg()[0], 2),
        },
        "results": rows,
        "streams": time_streams(path, args.runs),
    }
    (RESULTS / "split.json").write_text(json.dumps(result, indent=2) + "\n")

    print(
        f"\nsplit of a {args.duration:g} s 720p30 H.264/AAC clip ({size / 1e6:.1f} MB, "
        f"{result['clip']['mbit_per_s']} Mbit/s), median of {args.runs}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    header = f"{'case':<20} {'median s':>9} {'cpu s':>7} {'pool s':>8} {'x realtime':>11} "
    header += f"{'frames':>7} {'decoded':>8}"
    print(header)
    print("-" * len(header))
    for row in rows:
        pool = row["worker_pool_median_s"]
        print(
            f"{row['case']:<20} {row['median_s']:>9.2f} {row['cpu_median_s']:>7.2f} "
            f"{'-' if pool is None else f'{pool:.2f}':>8} "
            f"{row['x_realtime']:>11.1f} {row['frames_sampled']:>7} {row['video_frames_decoded']:>8}"
        )
    print_streams(result["streams"])
    print(f"\nwrote {RESULTS / 'split.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
