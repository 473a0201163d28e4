"""Seed corpus for the splitter fuzzer: tiny real containers from modgate/tools/mediagen.

Small on purpose (a few KB each): libFuzzer mutates bytes, and a mutation lands in the
interesting parts (box headers, EBML sizes, codec headers) far more often in a small file.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from modgate.tools.mediagen import Cue, MediaSpec, generate

_CUES = (Cue(0, 400, "first cue"), Cue(500, 900, "{\\i1}second{\\i0}\\Nline"))

SEEDS: dict[str, MediaSpec] = {
    "av-subs.mp4": MediaSpec(width=64, height=48, fps=10, duration_s=1.0, subtitles=_CUES),
    "av-subs.mkv": MediaSpec(container="mkv", width=64, height=48, fps=10, duration_s=1.0, subtitles=_CUES),
    "ass.mkv": MediaSpec(
        container="mkv",
        width=32,
        height=32,
        fps=5,
        duration_s=1.0,
        audio=None,
        subtitles=_CUES,
        subtitle_codec="ass",
    ),
    "av-subs.webm": MediaSpec(container="webm", width=64, height=48, fps=10, duration_s=1.0, subtitles=_CUES),
    # A cue long after the audio/video end: the container's duration is the cue's (issue 21).
    "late-cue.mkv": MediaSpec(
        container="mkv", width=32, height=32, fps=5, duration_s=1.0, subtitles=(Cue(30_000, 30_500, "late"),)
    ),
    "video.mov": MediaSpec(container="mov", width=32, height=32, fps=5, duration_s=1.0, audio=None),
    "audio.mp4": MediaSpec(video=False, duration_s=0.5),
    "meta.mp4": MediaSpec(
        width=32, height=32, fps=5, duration_s=0.6, audio=None, metadata=(("title", "t"), ("comment", "c"))
    ),
}


def write_seeds(directory: Path) -> list[Path]:
    """Encode every seed into `directory`; returns the paths."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, spec in SEEDS.items():
        path = directory / name
        if not path.exists():
            with tempfile.TemporaryDirectory() as tmp:
                generated = generate(spec, Path(tmp) / name)
                path.write_bytes(generated.data)
        paths.append(path)
    return paths
