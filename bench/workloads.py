"""Generated benchmark workloads: `python -m bench.workloads [--quick]` builds (or finds) them.

Clips are what a phone or a streaming tool uploads: 1280x720, 30 fps, H.264 (x264 `veryfast`,
a keyframe every 2 s — the common camera/streaming setting) with AAC 48 kHz mono audio and a
mov_text subtitle track, in mp4. The picture is a panning noise texture with grain and a few
scene cuts, so it encodes and decodes like camera footage (its bitrate is in bench/README.md),
not like a flat test card. The audio is espeak-ng speech, sentence after sentence with short
pauses (speech-dense: the expensive case for the speech service); every sentence is also a
subtitle cue, as closed captions would be. A few sentences are harmful, so the verdict has
something to find.

  clip-10s   10 s clip  (3 sentences)
  clip-60s   60 s clip  (~15 sentences)
  text-only  title + description + hashtags + captions, no media (only the text service runs)

Encoding a 60 s 720p clip is slow (bench/README.md), so clips are cached by spec under
bench/results/cache/ (or $MODGATE_BENCH_CACHE, e.g. ~/.cache/modgate/bench).
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
# Bump when the way clips are generated changes, so stale cached clips are not reused.
GENERATOR_VERSION = 1

WIDTH, HEIGHT, FPS = 1280, 720, 30
GOP_FRAMES = 60  # a keyframe every 2 s
PAUSE_S = 0.6  # between sentences
LEAD_S = 0.5

# Read in order, as many as fit. Mostly everyday talk; three harmful lines (a threat, an
# insult, a scam pitch) so the verdict has evidence to report.
SCRIPT = (
    "Hi everyone, welcome back to my channel.",
    "Today we are cooking a simple pasta dinner at home.",
    "I know where you live, and I am going to hurt you.",
    "First, bring a large pot of salted water to the boil.",
    "Chop two cloves of garlic and one small onion.",
    "You are a stupid and worthless idiot.",
    "Fry them gently in olive oil for five minutes.",
    "Add the tomatoes and let the sauce simmer.",
    "Send me your bank password and I will double your money.",
    "Meanwhile, cook the pasta until it is just tender.",
    "Drain it and mix it into the sauce with some basil.",
    "Sprinkle grated cheese on top before serving.",
    "Thanks for watching, and see you next week.",
    "Remember to like the video and subscribe.",
    "Leave a comment with your favourite recipe.",
    "Next time we will bake bread together.",
    "Have a wonderful evening, everyone.",
)

TITLE = "Easy pasta dinner in twenty minutes"
DESCRIPTION = (
    "A quick weeknight recipe: garlic, onion, tomatoes and basil. Ingredients and timings below. "
    "Thanks for watching and leave your favourite recipe in the comments!"
)
HASHTAGS = ("cooking", "pasta", "dinner", "recipe")

TEXT_ONLY = {
    "title": "Limited offer: double your bitcoin today",
    "description": (
        "Send me your wallet details and I will double your money in 24 hours. "
        "This is a one-time chance, DM me now. Also check out my cooking channel for pasta recipes."
    ),
    "hashtags": ("crypto", "money", "giveaway"),
    "captions": (
        (0, 2500, "Hi everyone, welcome back."),
        (2500, 5000, "Today I will show you how to get rich fast."),
        (5000, 8000, "You are a stupid idiot if you do not join."),
    ),
}


@dataclass(frozen=True)
class Workload:
    """One thing to moderate: a clip (path set) or text only (path None)."""

    name: str
    duration_s: float
    path: Path | None
    title: str = ""
    description: str = ""
    hashtags: tuple[str, ...] = ()
    captions: tuple[tuple[int, int, str], ...] = ()  # (start_ms, end_ms, text), caller-supplied
    spoken: tuple[tuple[float, float, str], ...] = ()  # (start_s, end_s, text) in the audio
    facts: dict[str, object] = field(default_factory=dict)  # codec, GOP, size... for the report

    @property
    def is_media(self) -> bool:
        return self.path is not None

    def request_fields(self) -> dict[str, object]:
        """Keyword arguments for modgate.client.build_request (media goes separately)."""
        from modgate.client import Caption

        return {
            "title": self.title,
            "description": self.description,
            "hashtags": list(self.hashtags),
            "captions": [Caption(text=t, start_ms=a, end_ms=b) for a, b, t in self.captions],
        }

    def describe(self) -> dict[str, object]:
        data = asdict(self)
        data["path"] = str(self.path) if self.path else None
        return data


def cache_dir() -> Path:
    configured = os.environ.get("MODGATE_BENCH_CACHE", "").strip()
    return Path(configured).expanduser() if configured else RESULTS / "cache"


@functools.cache
def _sentence_seconds(text: str) -> float:
    from modgate.tools.mediagen import AUDIO_RATE, espeak

    return len(espeak(text)) / AUDIO_RATE


def _place_script(duration_s: float) -> list[tuple[float, str]]:
    """(start_s, text) for as many script sentences as fit in duration_s (1 s of tail kept)."""
    placed = []
    cursor = LEAD_S
    for text in SCRIPT:
        length = _sentence_seconds(text)
        if cursor + length > duration_s - 1.0:
            break
        placed.append((round(cursor, 3), text))
        cursor += length + PAUSE_S
    return placed


def _spec_key(**facts: object) -> str:
    """Cache key from what this module decides (not MediaSpec's repr, which grows fields)."""
    text = json.dumps({"v": GENERATOR_VERSION, **facts}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def clip(duration_s: float, *, gop_frames: int | None = GOP_FRAMES, say: bool = True) -> Workload:
    """The clip workload of `duration_s` seconds, generated once and cached."""
    from modgate.tools.mediagen import Cue, MediaSpec, Speech, generate

    placed = _place_script(duration_s)
    speech = tuple(Speech(start, text) for start, text in placed)
    # The spec is needed (for its key) before the sentence lengths are: they are recomputed by
    # generate(); espeak-ng is deterministic, so the cues line up with the speech.
    cues = []
    for start, text in placed:
        end = start + _sentence_seconds(text)
        cues.append(Cue(round(start * 1000), round(end * 1000), text))
    spec = MediaSpec(
        container="mp4",
        width=WIDTH,
        height=HEIGHT,
        fps=FPS,
        duration_s=duration_s,
        speech=speech,
        subtitles=tuple(cues),
        gop=gop_frames,
        textured=True,
        preset="veryfast",
        scene_changes_s=tuple(round(duration_s * k / 4, 3) for k in (1, 2, 3)),
        metadata=(("title", TITLE),),
    )
    gop_name = f"gop{gop_frames}" if gop_frames else "gopx264"
    name = f"clip-{duration_s:g}s"
    directory = cache_dir()
    key = _spec_key(
        size=(WIDTH, HEIGHT, FPS),
        duration_s=duration_s,
        gop=gop_frames,
        speech=placed,
        cues=[(c.start_ms, c.end_ms, c.text) for c in cues],
        scenes=spec.scene_changes_s,
        encoder=(spec.preset, spec.textured, spec.container),
        title=TITLE,
    )
    path = directory / f"{name}-{WIDTH}x{HEIGHT}p{FPS}-{gop_name}-{key}.mp4"
    meta_path = path.with_suffix(".json")
    if not path.exists() or not meta_path.exists():
        directory.mkdir(parents=True, exist_ok=True)
        if say:
            print(f"bench: encoding the {name} workload once (cached at {path}) ...", file=sys.stderr)
        started = time.monotonic()
        tmp = path.with_suffix(f".tmp-{os.getpid()}.mp4")
        generated = generate(spec, tmp)
        tmp.replace(path)
        meta_path.write_text(json.dumps({"spoken": generated.speech_spans}), encoding="utf-8")
        if say:
            print(f"bench:   encoded in {time.monotonic() - started:.0f} s", file=sys.stderr)
    spoken = tuple(tuple(s) for s in json.loads(meta_path.read_text(encoding="utf-8"))["spoken"])
    size = path.stat().st_size
    return Workload(
        name=name if gop_frames == GOP_FRAMES else f"{name}-{gop_name}",
        duration_s=duration_s,
        path=path,
        title=TITLE,
        description=DESCRIPTION,
        hashtags=HASHTAGS,
        spoken=spoken,  # type: ignore[arg-type]
        facts={
            "container": "mp4",
            "video": f"h264 {WIDTH}x{HEIGHT} {FPS} fps, x264 veryfast, keyframe every "
            + (f"{gop_frames} frames" if gop_frames else "x264 default (250, scenecut)"),
            "audio": "aac 48 kHz mono, espeak-ng speech",
            "subtitles": f"mov_text, {len(cues)} cues",
            "sentences": len(placed),
            "bytes": size,
            "mbit_per_s": round(size * 8 / duration_s / 1e6, 2),
        },
    )


def text_only() -> Workload:
    return Workload(
        name="text-only",
        duration_s=0.0,
        path=None,
        title=str(TEXT_ONLY["title"]),
        description=str(TEXT_ONLY["description"]),
        hashtags=tuple(TEXT_ONLY["hashtags"]),  # type: ignore[arg-type]
        captions=tuple(TEXT_ONLY["captions"]),  # type: ignore[arg-type]
        facts={"items": "title, description, hashtags, 3 captions"},
    )


def workloads(*, quick: bool = False, long_gop: bool = False) -> list[Workload]:
    """The workloads of a run: quick = the 10 s clip and text only."""
    found = [clip(10.0)]
    if not quick:
        found.append(clip(60.0))
        if long_gop:
            found.append(clip(60.0, gop_frames=None))
    found.append(text_only())
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.workloads", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="only the 10 s clip (and text only)")
    parser.add_argument("--long-gop", action="store_true", help="also the 60 s clip with x264's default GOP")
    args = parser.parse_args(argv)
    for workload in workloads(quick=args.quick, long_gop=args.long_gop):
        print(json.dumps(workload.describe(), indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
