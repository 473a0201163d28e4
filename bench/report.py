"""The benchmark report: a markdown table, a printed summary and a PNG of where the time went.

Input is the JSON that `python -m bench` writes (bench/results/bench.json): the e2e figures of
the stack (bench/e2e.py) and the naive baseline's (bench/naive.py) for the same clips.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

# Lanes of the gateway's request, in the order they run (stages after split run concurrently).
COLOURS = {
    "queue+validate": "#bbbbbb",
    "split": "#4c72b0",
    "decode": "#4c72b0",
    "speech": "#dd8452",
    "transcript_text": "#f2c14e",
    "vision": "#55a868",
    "text": "#8172b3",
    "fusion": "#c44e52",
}
TARGET_RTF = 0.08
TARGET_SPEEDUP = 4.0


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:,.0f}"


def _s(value_ms: float | None) -> str:
    return "–" if value_ms is None else f"{value_ms / 1000:.2f}"


def _stage(row: dict[str, Any], stage: str) -> float | None:
    found = row["stages_ms"].get(stage)
    return None if found is None else float(found["p50"])


def _split_cell(row: dict[str, Any]) -> str:
    audio = _stage(row, "split_audio")
    return _s(_stage(row, "split")) + (f" ({_s(audio)})" if audio is not None else "")


def naive_for(result: dict[str, Any], workload: str) -> dict[str, Any] | None:
    return result.get("naive", {}).get(workload)


def speedups(result: dict[str, Any]) -> dict[str, float]:
    """naive total p50 / system e2e p50, per clip workload measured by both."""
    out = {}
    for row in result["e2e"]["latency"]:
        naive = naive_for(result, row["workload"])
        if naive:
            out[row["workload"]] = naive["median_s"]["total"] * 1000 / row["wall_ms"]["p50"]
    return out


def markdown(result: dict[str, Any]) -> str:
    meta = result["meta"]
    lines = [
        "# modgate benchmark",
        "",
        f"{meta['when']} · commit `{meta['commit']}` · {meta['cpus']} CPUs ({meta['cpu_model']}) · "
        f"device `{meta['device']}` · load average {meta['load_before']:.1f} before, "
        f"{meta['load_after']:.1f} after · mode `{meta['mode']}`",
        "",
        f"Stack settings: {meta['stack_settings']}",
        "",
        "## Latency (sequential requests, client wall time; stage columns are medians from Verdict.timings)",
        "",
        "| workload | p50 s | p95 s | RTF p50 | vs naive | split (audio part) | speech | transcript→text "
        "| vision | text | fusion | queueing | frames | n |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    ratio = speedups(result)
    for row in result["e2e"]["latency"]:
        rtf = row.get("rtf_p50")
        faster = f"{ratio[row['workload']]:.1f}x" if row["workload"] in ratio else "–"
        lines.append(
            f"| {row['workload']} | {_s(row['wall_ms']['p50'])} | {_s(row['wall_ms']['p95'])} | "
            f"{'–' if rtf is None else f'{rtf:.3f}'} | "
            f"{faster} | "
            + _split_cell(row)
            + " | "
            + " | ".join(
                _s(_stage(row, s))
                for s in ("speech", "transcript_text", "vision", "text", "fusion", "queueing")
            )
            + f" | {row['frames_sampled']} | {row['wall_ms']['n']} |"
        )
    if result.get("naive"):
        lines += [
            "",
            "## Naive baseline (one sequential script; bench/naive.py), median seconds",
            "",
            "| clip | total | decode (every frame) | whisper fp32 | CLIP 1 frame at a time | MiniLM "
            "| frames decoded / scored | peak RSS MB | runs |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for name, naive in result["naive"].items():
            med = naive["median_s"]
            run = naive["runs"][-1]
            lines.append(
                f"| {name} | {med['total']:.2f} | {med['decode']:.2f} | {med['speech']:.2f} | "
                f"{med['vision']:.2f} | {med['text']:.2f} | "
                f"{run['frames_decoded']} / {run['frames_scored']} | "
                f"{naive['peak_rss_mb']:.0f} | {naive['reps']} |"
            )
    if result["e2e"].get("throughput"):
        lines += [
            "",
            "## Throughput (fixed number of requests from N concurrent callers)",
            "",
            "| workload | callers | requests | req/s | media s per s | p50 s | p95 s | queueing p50 ms "
            "| errors | degraded* |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for point in result["e2e"]["throughput"]:
            lat = point["latency_ms"] or {}
            lines.append(
                f"| {point['workload']} | {point['concurrency']} | {point['requests']} | "
                f"{point['requests_per_s']:.2f} | {point['media_s_per_s']:.1f} | {_s(lat.get('p50'))} | "
                f"{_s(lat.get('p95'))} | {_ms(point['queueing_ms_p50'])} | {len(point['errors'])} | "
                f"{point['degraded']} {' '.join(point.get('degraded_states', []))} |"
            )
        lines.append("")
        lines.append("*degraded for a reason other than VISUAL being uncalibrated (random CLIP weights).")
    memory = result["e2e"].get("memory")
    if memory:
        lines += ["", "## Peak RSS", "", "| process | peak RSS MB |", "|---|---:|"]
        for name, mb in memory["peak_rss_mb_by_process"].items():
            lines.append(f"| {name} | {mb:,.0f} |")
        lines += ["", "| service (whole process group) | peak RSS MB |", "|---|---:|"]
        for name, mb in memory["peak_rss_mb_by_service"].items():
            lines.append(f"| {name} | {mb:,.0f} |")
    lines += ["", "## Targets", ""] + [f"- {line}" for line in target_lines(result)]
    lines += [
        "",
        "p95 is nearest-rank over the runs listed (n); with few runs it is the slowest run.",
        "Stages after split run concurrently, so the stage columns do not add up to the total.",
        "",
    ]
    return "\n".join(lines)


def target_lines(result: dict[str, Any]) -> list[str]:
    out = []
    ratio = speedups(result)
    for row in result["e2e"]["latency"]:
        if not row["workload"].startswith("clip-60s") or "(" in row["workload"]:
            continue
        p50_s = row["wall_ms"]["p50"] / 1000
        ok = row["rtf_p50"] <= TARGET_RTF
        out.append(
            f"{row['workload']}: p50 {p50_s:.2f} s, RTF {row['rtf_p50']:.3f} "
            f"({'meets' if ok else 'misses'} RTF <= {TARGET_RTF})"
        )
    for name, value in ratio.items():
        if name.startswith("clip-60s"):
            verdict = "meets" if value >= TARGET_SPEEDUP else "misses"
            out.append(f"{name}: {value:.1f}x faster than naive ({verdict} >= {TARGET_SPEEDUP:g}x)")
        else:  # the targets are stated for the 60 s clip
            out.append(f"{name}: {value:.1f}x faster than naive (for information)")
    return out


def chart(result: dict[str, Any], path: Path) -> Path:
    """Horizontal timeline per clip: the naive script's stages end to end, the stack's lanes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    # (label, bars as (stage, start, width, lane offset, height), total)
    Bar = tuple[str, float, float, float, float]
    rows: list[tuple[str, list[Bar], float]] = []
    top, middle, bottom, lane = -0.25, 0.0, 0.25, 0.22
    for row in result["e2e"]["latency"]:
        if row["duration_s"] == 0:
            continue
        naive = naive_for(result, row["workload"]) if "(" not in row["workload"] else None
        if naive:
            med = naive["median_s"]
            t, bars = 0.0, []
            for stage in ("decode", "speech", "vision", "text"):
                bars.append((stage, t, med[stage], middle, 0.7))
                t += med[stage]
            rows.append((f"{row['workload']}\nnaive", bars, med["total"]))
        st = {k: (_stage(row, k) or 0.0) / 1000 for k in ("queueing", "validate", "split", "split_audio")}
        head = st["queueing"] + st["validate"]
        start = head + st["split"]
        # Lanes: speech (after the audio part of the split, when audio first ran), the frames
        # (split, then vision), text; fusion after the last of them.
        bars = [("queue+validate", 0.0, head, middle, 0.7), ("split", head, st["split"], middle, lane)]
        speech_start = start
        if st["split_audio"]:
            bars.append(("split", head, st["split_audio"], top, lane))
            speech_start = head + st["split_audio"]
        lanes_end = start
        for stages, offset, t in (
            (("speech", "transcript_text"), top, speech_start),
            (("vision",), middle, start),
            (("text",), bottom, start),
        ):
            for stage in stages:
                d = (_stage(row, stage) or 0.0) / 1000
                if d:
                    bars.append((stage, t, d, offset, lane))
                t += d
            lanes_end = max(lanes_end, t)
        bars.append(("fusion", lanes_end, (_stage(row, "fusion") or 0.0) / 1000, middle, 0.7))
        rows.append((f"{row['workload']}\nmodgate", bars, row["wall_ms"]["p50"] / 1000))

    fig, ax = plt.subplots(figsize=(11, 1.0 + 0.9 * len(rows)))
    for y, (_label, bars, total) in enumerate(rows):
        for stage, begin, width, offset, height in bars:
            if width > 0:
                ax.barh(y + offset, width, left=begin, height=height, color=COLOURS[stage], edgecolor="white")
        ax.plot([total, total], [y - 0.4, y + 0.4], color="black", linewidth=1.5)
        ax.text(total, y + 0.42, f" {total:.2f} s", va="bottom", fontsize=8)
    ax.set_yticks(range(len(rows)), [r[0] for r in rows], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("seconds (medians; black line: end-to-end p50 at the client)")
    ax.set_title(f"Latency breakdown, {result['meta']['cpus']} CPUs, device {result['meta']['device']}")
    labels = {"split": "split (naive: decode every frame)"}
    handles = [Patch(color=c, label=labels.get(k, k)) for k, c in COLOURS.items() if k != "decode"]
    ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
