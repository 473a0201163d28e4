"""`modgate moderate FILE` / `modgate moderate --text ...`: ask the gateway for a verdict.

Prints a readable verdict (decision, categories, evidence with timestamps, modality status,
reasons, stage timings, trace id) or, with `--json`, the Verdict as JSON. Progress goes to
stderr, so stdout stays clean for pipes.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import TextIO

from google.protobuf.json_format import MessageToDict

from modgate.client import DEFAULT_TARGET, ModerationClient, ModerationError, Options
from modgate.v1 import moderation_pb2 as pb

DECISION = {pb.DECISION_ALLOW: "ALLOW", pb.DECISION_REVIEW: "REVIEW", pb.DECISION_BLOCK: "BLOCK"}
MODALITY = {pb.MODALITY_AUDIO: "AUDIO", pb.MODALITY_VISUAL: "VISUAL", pb.MODALITY_TEXT: "TEXT"}
STATE = {
    pb.MODALITY_STATE_OK: "OK",
    pb.MODALITY_STATE_SKIPPED: "SKIPPED",
    pb.MODALITY_STATE_FAILED: "FAILED",
    pb.MODALITY_STATE_TIMED_OUT: "TIMED_OUT",
    pb.MODALITY_STATE_UNCALIBRATED: "UNCALIBRATED",
}
SOURCE = {
    pb.SOURCE_TRANSCRIPT: "transcript",
    pb.SOURCE_FRAME: "frame",
    pb.SOURCE_SUBTITLE: "subtitle",
    pb.SOURCE_TITLE: "title",
    pb.SOURCE_DESCRIPTION: "description",
    pb.SOURCE_HASHTAG: "hashtag",
    pb.SOURCE_CAPTION: "caption",
    pb.SOURCE_METADATA: "metadata",
}
TIMED_SOURCES = {pb.SOURCE_TRANSCRIPT, pb.SOURCE_FRAME, pb.SOURCE_SUBTITLE, pb.SOURCE_CAPTION}
STREAM_KIND = {
    pb.STREAM_KIND_AUDIO: "audio",
    pb.STREAM_KIND_VIDEO: "video",
    pb.STREAM_KIND_SUBTITLE: "subtitle",
    pb.STREAM_KIND_ATTACHMENT: "attachment",
    pb.STREAM_KIND_DATA: "data",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", nargs="?", type=Path, help="video file (mp4, mov, webm, mkv)")
    parser.add_argument("--text", help="moderate this text (sent as the description; no media needed)")
    parser.add_argument("--title", default="", help="title of the item")
    parser.add_argument("--description", default="", help="description of the item")
    parser.add_argument("--hashtag", action="append", default=[], help="a hashtag (repeatable)")
    parser.add_argument("--policy", default="", help="policy name (default: the gateway's default policy)")
    parser.add_argument(
        "--gateway",
        default=os.environ.get("MODGATE_GATEWAY_ADDR", DEFAULT_TARGET),
        help=f"gateway address host:port (default $MODGATE_GATEWAY_ADDR or {DEFAULT_TARGET})",
    )
    parser.add_argument("--timeout", type=float, default=60.0, help="deadline in seconds (default 60)")
    parser.add_argument("--json", action="store_true", help="print the verdict as JSON")
    parser.add_argument("--transcript", action="store_true", help="include the speech transcript")
    parser.add_argument(
        "--skip", action="append", default=[], choices=["AUDIO", "VISUAL", "TEXT"], help="skip a modality"
    )
    parser.add_argument("--fps", type=float, default=0.0, help="frames sampled per second (gateway default)")
    parser.add_argument("--max-frames", type=int, default=0, help="cap on sampled frames (gateway default)")
    parser.add_argument("--request-id", default="", help="idempotency key (also keys canary routing)")
    parser.add_argument(
        "--token", default=os.environ.get("MODGATE_TOKEN", ""), help="bearer token ($MODGATE_TOKEN)"
    )
    parser.add_argument("--tls", action="store_true", help="use TLS (system roots unless --ca-cert)")
    parser.add_argument("--ca-cert", type=Path, help="PEM CA bundle that signed the gateway's certificate")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress on stderr")


class ProgressLine:
    """Upload/wait progress on stderr: one self-rewriting line on a terminal, a few lines otherwise."""

    def __init__(self, stream: TextIO = sys.stderr) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self._last_stage = ""
        self._started = time.monotonic()

    def __call__(self, stage: str, done: int, total: int) -> None:
        if self.tty:
            if stage == "upload":
                line = f"uploading {done / 1e6:.1f}/{total / 1e6:.1f} MB"
            else:
                line = f"waiting for the verdict... {done / 1000:.1f} s"
            self.stream.write("\r\033[K" + line)
            self.stream.flush()
        elif stage != self._last_stage:
            # Not a terminal (a log, a pipe): one line per stage, no rewriting.
            line = f"uploading {total / 1e6:.1f} MB" if stage == "upload" else "waiting for the verdict"
            self.stream.write(line + "\n")
            self.stream.flush()
        self._last_stage = stage

    def finish(self) -> None:
        if self.tty and self._last_stage:
            self.stream.write("\r\033[K")
            self.stream.flush()


def mmss(ms: int) -> str:
    minutes, rest = divmod(ms, 60_000)
    return f"{minutes:02d}:{rest / 1000:04.1f}"


def _evidence_when(ev: pb.Evidence) -> str:
    if ev.source == pb.SOURCE_FRAME:
        return f"{mmss(ev.start_ms)}"
    if ev.source in TIMED_SOURCES or ev.end_ms:
        return f"{mmss(ev.start_ms)}-{mmss(ev.end_ms)}"
    return SOURCE.get(ev.source, "")


def _quote(text: str, limit: int = 60) -> str:
    text = " ".join(text.split())
    if len(text) > limit:
        text = text[: limit - 3].rstrip() + "..."
    return "'" + text.replace("'", "\u2019") + "'"


def format_verdict(verdict: pb.Verdict, *, color: bool = False) -> str:
    """The human-readable verdict (plain text; ANSI colour on the decision when `color`)."""
    lines = _summary_lines(verdict, color=color)
    lines += ["", "Categories", *_category_lines(verdict)]
    lines += ["", "Evidence", *_evidence_lines(verdict)]
    lines += ["", "Modalities", *_modality_lines(verdict)]
    if _several_streams(verdict.media):
        lines += ["", "Streams", *_stream_lines(verdict.media)]
    if verdict.transcript:
        lines += ["", "Transcript", *_transcript_lines(verdict)]
    if verdict.reasons:
        lines += ["", "Reasons"]
        lines += [f"  - {r}" for r in verdict.reasons]
    if verdict.timings:
        lines += ["", "Timings: " + ", ".join(f"{t.stage} {t.duration_ms} ms" for t in verdict.timings)]
    if verdict.trace_id:
        lines.append(f"Trace: {verdict.trace_id}  (modgate trace {verdict.trace_id})")
    else:
        lines.append("Trace: (tracing off)")
    if verdict.verdict_id:
        again = ", answered from the store (decided before)" if verdict.from_store else ""
        lines.append(f"Verdict: {verdict.verdict_id}  (modgate verdicts show {verdict.verdict_id}){again}")
    return "\n".join(lines)


def _summary_lines(verdict: pb.Verdict, *, color: bool) -> list[str]:
    """Decision, risk and policy; the ids; what the media was."""
    decision = DECISION.get(verdict.decision, "UNSPECIFIED")
    if color:
        code = {"ALLOW": "32", "REVIEW": "33", "BLOCK": "31"}.get(decision, "0")
        decision = f"\033[1;{code}m{decision}\033[0m"
    degraded = "  (degraded)" if verdict.degraded else ""
    policy = f"{verdict.policy_name}@{verdict.policy_version}"
    lines = [f"{decision}  risk {verdict.risk:.2f}{degraded}  policy {policy}"]
    if verdict.request_id or verdict.content_id:
        ids = f"request {verdict.request_id}"
        if verdict.content_id:
            ids += f"  content {verdict.content_id}"
        lines.append(ids)
    if verdict.HasField("media") and (verdict.media.has_audio or verdict.media.has_video):
        lines.append("media: " + _media_summary(verdict.media))
    return lines


def _media_summary(m: pb.MediaInfo) -> str:
    parts = [m.container or "media", f"{m.duration_ms / 1000:.1f} s"]
    if m.has_video:
        parts.append(f"{m.width}x{m.height}, {m.frames_sampled} frames sampled")
    tracks = [s for s in m.streams if s.kind == pb.STREAM_KIND_AUDIO and s.moderated]
    if len(tracks) > 1:
        parts.append(f"{len(tracks)} audio tracks")
    elif m.has_audio:
        parts.append("audio")
    if m.subtitle_streams:
        parts.append(f"{m.subtitle_streams} subtitle stream(s)")
    return ", ".join(parts)


def _av_streams(m: pb.MediaInfo) -> list[pb.MediaStream]:
    return [s for s in m.streams if s.kind in (pb.STREAM_KIND_AUDIO, pb.STREAM_KIND_VIDEO)]


def _several_streams(m: pb.MediaInfo) -> bool:
    """Worth a Streams section: several audio or video streams, or one nobody looked at."""
    streams = _av_streams(m)
    audio = [s for s in streams if s.kind == pb.STREAM_KIND_AUDIO]
    return len(audio) > 1 or len(streams) - len(audio) > 1 or any(not s.moderated for s in streams)


def _stream_lines(m: pb.MediaInfo) -> list[str]:
    lines = []
    for s in m.streams:
        what = f"{STREAM_KIND.get(s.kind, '?')} {s.codec or '?'}"
        if s.width:
            what += f" {s.width}x{s.height}"
        if s.language:
            what += f" {s.language}"
        if s.is_default:
            what += " (default)"
        if s.moderated:
            done = f"moderated, {s.frames_sampled} frames" if s.kind == pb.STREAM_KIND_VIDEO else "moderated"
        else:
            done = f"NOT moderated: {s.reason}"
        lines.append(f"  #{s.index:<2} {what:<28} {done}")
    return lines


def _transcript_lines(verdict: pb.Verdict) -> list[str]:
    several = len({s.stream_index for s in verdict.transcript}) > 1
    lines = []
    for s in verdict.transcript:
        track = f"[#{s.stream_index}] " if several else ""
        lines.append(f"  {mmss(s.start_ms)}-{mmss(s.end_ms)}  {track}{s.text.strip()}")
    return lines


def _category_lines(verdict: pb.Verdict) -> list[str]:
    lines = [f"  {'category':<12} {'score':>5}  {'decision':<8}  by modality"]
    for cat in sorted(verdict.categories, key=lambda c: (-c.score, c.category)):
        # Only the modalities that said something: a row of 0.00s hides the one that matters.
        by = "  ".join(f"{m} {s:.2f}" for m, s in sorted(cat.by_modality.items()) if s >= 0.005)
        lines.append(f"  {cat.category:<12} {cat.score:>5.2f}  {DECISION.get(cat.decision, '?'):<8}  {by}")
    return lines


def _evidence_lines(verdict: pb.Verdict, limit: int = 15) -> list[str]:
    if not verdict.evidence:
        return ["  (none)"]
    lines = []
    # Which stream, once the media has several of its kind: "[transcript #2, semantic]".
    kinds = {s.index: s.kind for s in verdict.media.streams}
    per_kind = Counter(kinds.values())
    for ev in verdict.evidence[:limit]:
        where = _evidence_when(ev)
        what = _quote(ev.snippet) if ev.snippet else ""
        extra = f"frame {ev.frame_index}" if ev.source == pb.SOURCE_FRAME else SOURCE.get(ev.source, "")
        if ev.stream_index in kinds and per_kind[kinds[ev.stream_index]] > 1:
            extra += f" #{ev.stream_index}"
        lines.append(
            f"  {MODALITY.get(ev.modality, '?'):<6} {where:<17} {ev.category} {ev.score:.2f} {what}"
            f"  [{extra}, {ev.signal}]".rstrip()
        )
    if len(verdict.evidence) > limit:
        lines.append(f"  ... {len(verdict.evidence) - limit} more (see --json)")
    return lines


def _modality_lines(verdict: pb.Verdict) -> list[str]:
    lines = []
    for ms in verdict.modalities:
        model = f"{ms.model.name} ({ms.model.variant})" if ms.model.name else (ms.model.variant or "")
        state = STATE.get(ms.state, "?")
        row = f"  {MODALITY.get(ms.modality, '?'):<6} {state:<12} {ms.latency_ms:>6} ms  {model}"
        if ms.reason:
            row += f"  - {ms.reason}"
        lines.append(row.rstrip())
    return lines


def verdict_json(verdict: pb.Verdict) -> str:
    return json.dumps(
        MessageToDict(verdict, preserving_proto_field_name=True, always_print_fields_with_no_presence=True),
        indent=2,
    )


def run(args: argparse.Namespace) -> int:
    if args.file is None and not (args.text or args.title or args.description or args.hashtag):
        print("modgate moderate: give a FILE or --text (see --help)", file=sys.stderr)
        return 2
    if args.file is not None and not args.file.is_file():
        print(f"modgate moderate: {args.file} is not a file", file=sys.stderr)
        return 2
    progress = None if args.quiet else ProgressLine()
    fields: dict[str, object] = {
        "request_id": args.request_id,
        "title": args.title,
        # --text is moderated as (part of) the description, with or without a file.
        "description": "\n".join(t for t in (args.description, args.text) if t),
        "hashtags": args.hashtag,
        "policy": args.policy,
        "options": Options(
            frame_sample_fps=args.fps,
            max_frames=args.max_frames,
            include_transcript=args.transcript,
            skip_modalities=args.skip,
        ),
    }
    client = ModerationClient(
        args.gateway,
        token=args.token or None,
        tls=args.tls,
        root_certificates=args.ca_cert,
        timeout_s=args.timeout,
    )
    try:
        if args.file is not None:
            verdict = client.moderate_file(args.file, progress=progress, **fields)
        else:
            verdict = client.moderate_text(progress=progress, **fields)
    except ModerationError as exc:
        if progress:
            progress.finish()
        print(f"modgate moderate: {exc}", file=sys.stderr)
        if exc.code.name == "UNAVAILABLE":
            print(
                f"  is the gateway running at {args.gateway}? start the stack with `modgate up`",
                file=sys.stderr,
            )
        return 1
    finally:
        client.close()
    if progress:
        progress.finish()
    if args.json:
        print(verdict_json(verdict))
    else:
        print(format_verdict(verdict, color=sys.stdout.isatty()))
    return 0
