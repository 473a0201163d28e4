"""atheris (libFuzzer) harness for the media splitter.

    .venv/bin/python -m tests.fuzz.fuzz_splitter [libFuzzer flags] [CORPUS_DIR | FILE...]

Each input is handed to gateway.media.splitter.split_media as container bytes, with tight
limits (2 s decode budget, 8 frames). A split may return media or raise a GatewayError (a
typed refusal); anything else is a finding: an uncaught exception, a crash in FFmpeg (the
whole process dies: libFuzzer records it), a hang past -timeout, or memory past
-rss_limit_mb. libFuzzer writes the input that caused it to <-artifact_prefix>crash-<sha1>.

A missing or empty corpus directory is first filled with the seeds (tests/fuzz/seeds.py, tiny
files from modgate/tools/mediagen); with none given, a temporary one is used. Given files instead of a
directory, libFuzzer runs each once: that is how tests/fuzz/regressions/ are replayed.

Useful flags: -atheris_runs=N (stop after N inputs), -max_total_time=S, -seed=N, -timeout=S,
-rss_limit_mb=MB, -artifact_prefix=DIR/, -jobs=N -workers=N (parallel), -print_final_stats=1.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["gateway"]):
    from gateway.errors import GatewayError
    from gateway.media.limits import MediaLimits, SplitOptions
    from gateway.media.splitter import split_media

OPTIONS = SplitOptions(max_frames=8, frame_max_side=64, decode_threads=1)
LIMITS = MediaLimits(max_bytes=4 * 1024 * 1024, max_duration_s=120.0, decode_budget_s=2.0)


def one_input(data: bytes) -> None:
    # A typed refusal is the expected outcome for most mutants; anything else is a finding.
    with contextlib.suppress(GatewayError):
        split_media(data, OPTIONS, LIMITS)


def _quiet_ffmpeg() -> None:
    # FFmpeg logs every damaged box it meets; at fuzzing speed that drowns libFuzzer's output.
    import av.logging

    av.logging.set_level(None)


def main(argv: list[str]) -> None:
    args = list(argv)
    from tests.fuzz.seeds import write_seeds

    inputs = [a for a in args[1:] if not a.startswith("-")]
    if not inputs:
        corpus = Path(tempfile.mkdtemp(prefix="modgate-fuzz-corpus-"))
        args.append(str(corpus))
        inputs = [str(corpus)]
    for name in inputs:
        path = Path(name)
        # A corpus directory that is missing or empty starts from the seeds.
        if not path.is_file() and (not path.exists() or not any(path.iterdir())):
            write_seeds(path)
    if not any(a.startswith("-max_len=") for a in args):
        args.append("-max_len=65536")
    _quiet_ffmpeg()
    os.environ.setdefault("OTEL_SDK_DISABLED", "true")
    atheris.Setup(args, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
