"""Generated media for the tests, the benchmarks and the demo: real containers encoded with
PyAV, real speech from espeak-ng.

    from modgate.tools.mediagen import MediaSpec, Cue, Speech, generate

    clip = generate(MediaSpec(speech=(Speech(0.5, "I know where you live"),)), tmp_path / "a.mp4")
    clip.path, clip.audio_duration_s, clip.speech_spans, clip.spec.subtitles

Every video frame carries its frame number as a row of black/white blocks along the top
(`read_frame_number` reads it back, even after downscaling), over a background whose colour
changes at `scene_changes_s`, with a box moving left to right. Audio is a quiet tone, silence,
or espeak-ng sentences placed at given times. More audio tracks (`more_audio`, each with its
own sound, language tag and default flag), more video streams (`more_video`) and cover art
make multi-stream files. Subtitles are written as real subtitle streams
(mov_text in mp4/mov, subrip or ass in mkv, webvtt in webm). Malformed variants: truncated(),
random_bytes(), ZERO_BYTES, and any valid file saved under the wrong extension. For the speech
service alone: `speech_track` (16 kHz int16 sentences at known times), `tone`.

Modules: ``spec`` (what to make), ``frames`` (the picture), ``audio`` (speech, tones),
``encode`` (muxing), ``malformed``, ``overlay`` (on-screen text in Debian fonts: `overlays`
draws it into the picture between two times), ``ocrset`` (the OCR quality set). Needs espeak-ng
for speech (`make install` installs it).
"""

from __future__ import annotations

from modgate.tools.mediagen.audio import (
    SENTENCES,
    SR,
    Utterance,
    espeak,
    have_espeak,
    make_audio,
    speak,
    speech_track,
    tone,
)
from modgate.tools.mediagen.encode import ASS_HEADER, generate, mux_subtitles
from modgate.tools.mediagen.frames import MARKER_BITS, draw_frame, read_frame_number
from modgate.tools.mediagen.malformed import ZERO_BYTES, random_bytes, save, truncated
from modgate.tools.mediagen.spec import (
    AUDIO_RATE,
    AudioKind,
    AudioTrackSpec,
    Container,
    Cue,
    Generated,
    MediaSpec,
    Speech,
    TextOverlay,
    VideoStreamSpec,
)

__all__ = [
    "ASS_HEADER",
    "AUDIO_RATE",
    "MARKER_BITS",
    "SENTENCES",
    "SR",
    "ZERO_BYTES",
    "AudioKind",
    "AudioTrackSpec",
    "Container",
    "Cue",
    "Generated",
    "MediaSpec",
    "Speech",
    "TextOverlay",
    "Utterance",
    "VideoStreamSpec",
    "draw_frame",
    "espeak",
    "generate",
    "have_espeak",
    "make_audio",
    "mux_subtitles",
    "random_bytes",
    "read_frame_number",
    "save",
    "speak",
    "speech_track",
    "tone",
    "truncated",
]
