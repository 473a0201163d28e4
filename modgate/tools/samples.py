"""Sample videos for `modgate demo`, the end-to-end tests and the benchmarks: real speech, real
subtitles, made with :mod:`modgate.tools.mediagen`.

An MP4 (H.264 video at 10 fps, AAC audio, a mov_text subtitle track) whose audio is espeak-ng
speaking given sentences at given times, and which lasts as long as its speech needs. The
demo's sample says a threat while its subtitle stays benign, so only the AUDIO modality can
catch it — the point of a multimodal moderator.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from modgate.tools.mediagen import AUDIO_RATE, Cue, MediaSpec, Speech, espeak, generate

FPS = 10
WIDTH, HEIGHT = 320, 240
TAIL_S = 0.5  # after the last sentence (or after 2 s when nothing is spoken)

# A sentence spoken by espeak-ng starting at start_s; a subtitle cue (the generator's types).
Line = Speech
Subtitle = Cue


@dataclass(frozen=True)
class Sample:
    path: Path
    duration_s: float
    # (start_s, end_s, text) of each spoken sentence as placed in the audio.
    spoken: tuple[tuple[float, float, str], ...] = field(default=())
    subtitles: tuple[Subtitle, ...] = ()


GREETING = Line(0.5, "Hi everyone, thanks for watching my channel.")
THREAT = Line(4.5, "I know where you live, and I am going to hurt you.")
THREAT_LINES = (GREETING, THREAT)
THREAT_SUBTITLES = (Subtitle(0, 4000, "Welcome back to my cooking channel!"),)
BENIGN_LINES = (GREETING, Line(4.5, "Today we are baking bread with warm water and flour."))
BENIGN_SUBTITLES = (Subtitle(0, 4000, "Welcome back to my cooking channel!"),)


def make_video(
    path: Path,
    lines: tuple[Line, ...] = (),
    subtitles: tuple[Subtitle, ...] = (),
    *,
    duration_s: float | None = None,
    title: str = "",
    audio_track: bool = True,
) -> Sample:
    """Encode an MP4 with `lines` spoken at their times and `subtitles` as a mov_text track
    (no audio stream at all when `audio_track` is false). It lasts `duration_s`, or longer
    when the speech or the subtitles need it."""
    if lines and not audio_track:
        raise ValueError("spoken lines need an audio track")
    # espeak-ng is deterministic: the generator speaks the same lengths again.
    needed = max((line.start_s + len(espeak(line.text)) / AUDIO_RATE for line in lines), default=2.0) + TAIL_S
    duration = max(duration_s or 0.0, needed, max((s.end_ms / 1000 for s in subtitles), default=0.0))
    spec = MediaSpec(
        width=WIDTH,
        height=HEIGHT,
        fps=FPS,
        duration_s=duration,
        audio=("speech" if lines else "silence") if audio_track else None,
        speech=tuple(lines),
        subtitles=tuple(subtitles),
        metadata=(("title", title),) if title else (),
    )
    made = generate(spec, path)
    return Sample(path=path, duration_s=duration, spoken=made.speech_spans, subtitles=tuple(subtitles))


def threat_video(path: Path) -> Sample:
    """Speech that makes a threat; a benign subtitle. Should come back REVIEW or BLOCK via AUDIO."""
    return make_video(path, THREAT_LINES, THREAT_SUBTITLES)


def benign_video(path: Path) -> Sample:
    """Benign speech and subtitle. Should come back ALLOW."""
    return make_video(path, BENIGN_LINES, BENIGN_SUBTITLES)
