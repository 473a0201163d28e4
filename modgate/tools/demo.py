"""`modgate demo` (what `make demo` runs): the whole product in one command.

1. Generates a sample video (modgate.tools.samples): espeak-ng speech that greets, then makes
   a threat, with a benign subtitle ("Welcome back to my cooking channel!").
2. Starts the local stack (`modgate up`'s processes) on free ports, health-gated.
3. Moderates the video through the gateway's gRPC API and prints the verdict: the threat is
   only in the speech, so the evidence is AUDIO, with its timestamps.
4. Shows where the time went (the request's trace), then stops every process.

A stack that `modgate up` already runs is used as is (and left running).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path
from types import FrameType

import psutil

from modgate.client import ModerationClient, ModerationError, Options
from modgate.ports import DEFAULT_PORTS
from modgate.tools.moderate_cmd import DECISION, ProgressLine, format_verdict
from modgate.tools.stack import (
    STATE_FILE,
    Stack,
    StackConfig,
    StackError,
    free_port,
    modgate_home,
    port_in_use,
)
from modgate.tools.stack.health import MODALITY_HEALTH_NAMES, grpc_serving
from modgate.v1 import moderation_pb2 as pb


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--file", type=Path, help="moderate this video instead of the generated sample")
    parser.add_argument(
        "--timeout", type=float, default=300.0, help="seconds to wait for the stack (default 300)"
    )
    parser.add_argument("--no-trace", action="store_true", help="do not print the request's trace")


def _say(line: str) -> None:
    print(f"modgate demo: {line}", file=sys.stderr, flush=True)


def _running_stack(home: Path) -> str | None:
    """The gateway address of a stack that `modgate up` is running, if any."""
    try:
        state = json.loads((home / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    supervisor = state.get("supervisor_pid")
    if state.get("status") == "ready" and supervisor and psutil.pid_exists(supervisor):
        return str(state.get("gateway") or "") or None
    return None


def _ports() -> dict[str, int]:
    """The usual ports when all are free (so `modgate trace` and docs line up), else free ones."""
    if not any(port_in_use(p) for p in DEFAULT_PORTS.values()):
        return dict(DEFAULT_PORTS)
    return {name: free_port() for name in DEFAULT_PORTS}


class _Interrupted(Exception):
    pass


def run(args: argparse.Namespace) -> int:
    home = modgate_home()
    if args.file is not None:
        if not args.file.is_file():
            _say(f"{args.file} is not a file")
            return 2
        video = args.file
        _say(f"moderating {video}")
    else:
        from modgate.tools.samples import THREAT, THREAT_SUBTITLES, threat_video

        video = home / "samples" / "demo-threat.mp4"
        sample = threat_video(video)
        start, end, words = sample.spoken[-1]
        _say(
            f"generated {video} ({sample.duration_s:.1f} s): speech says {words!r} at "
            f"{start:.1f}-{end:.1f} s; subtitle says {THREAT_SUBTITLES[0].text!r}"
        )
        assert words == THREAT.text

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        raise _Interrupted(signal.Signals(signum).name)

    previous = signal.signal(signal.SIGTERM, on_signal)
    stack: Stack | None = None
    try:
        target = _running_stack(home)
        if target:
            _say(f"using the stack `modgate up` is running (gateway {target})")
        else:
            stack = Stack(StackConfig(ports=_ports(), home=home))
            _say("starting the local stack (3 model services + gateway + trace store); models load once")
            stack.start(timeout_s=args.timeout, say=_say)
            target = stack.gateway_target
        _wait_modalities(target)
        verdict = _moderate(target, video)
        print(format_verdict(verdict, color=sys.stdout.isatty()))
        if verdict.trace_id and not args.no_trace:
            _print_trace(verdict.trace_id, stack.home if stack else home)
        decision = DECISION.get(verdict.decision, "UNSPECIFIED")
        if args.file is None:
            audio = [e for e in verdict.evidence if e.modality == pb.MODALITY_AUDIO]
            if verdict.decision in (pb.DECISION_REVIEW, pb.DECISION_BLOCK) and audio:
                _say(f"{decision}: the threat was caught in the speech, although the subtitle is benign")
            else:
                _say(f"unexpected: {decision} without AUDIO evidence for a spoken threat")
                return 1
        return 0
    except (KeyboardInterrupt, _Interrupted):
        _say("interrupted")
        return 130
    except (StackError, ModerationError) as exc:
        _say(str(exc))
        return 1
    finally:
        signal.signal(signal.SIGTERM, previous)
        if stack is not None:
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # finish stopping children first
            try:
                _say("stopping the stack")
                stack.stop(say=_say)
            finally:
                signal.signal(signal.SIGINT, signal.default_int_handler)


def _wait_modalities(target: str, timeout_s: float = 15.0) -> None:
    """The gateway is ready before its probes have seen the services ready (about a second
    later): wait for that, so the demo's verdict is not degraded by the start-up."""
    serving = grpc_serving(target, MODALITY_HEALTH_NAMES)
    deadline = time.monotonic() + timeout_s
    while not serving():
        if time.monotonic() > deadline:
            _say(f"not every modality is SERVING at the gateway after {timeout_s:.0f} s; moderating anyway")
            return
        time.sleep(0.2)


def _moderate(target: str, video: Path) -> pb.Verdict:
    progress = ProgressLine()
    started = time.monotonic()
    with ModerationClient(target, timeout_s=120.0) as client:
        try:
            verdict = client.moderate_file(
                video,
                progress=progress,
                title="Sunday baking",
                options=Options(include_transcript=True),
            )
        finally:
            progress.finish()
    _say(f"verdict in {time.monotonic() - started:.2f} s")
    return verdict


def _print_trace(trace_id: str, home: Path) -> None:
    from modgate.tools import trace_cmd

    print(f"\nWhere the time went (modgate trace {trace_id}):")
    trace_args = argparse.Namespace(
        trace_id=trace_id, last=False, db=home / "traces.db", json=False, wait=5.0
    )
    try:
        trace_cmd.run(trace_args)
    except Exception as exc:  # the verdict is the demo; a trace display problem is only noted
        _say(f"could not show the trace: {exc}")
