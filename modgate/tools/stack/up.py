"""`modgate up`: start the local stack, keep it running until a signal, then stop it.

Progress and the addresses go to stderr; the stack stops when any of its processes exits
(with that process's last log lines) or on SIGINT / SIGTERM / SIGHUP.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from types import FrameType

from modgate.ports import DEFAULT_PORTS
from modgate.tools.stack.process import free_port
from modgate.tools.stack.specs import StackConfig
from modgate.tools.stack.stack import Stack, StackError, StackInterrupted


def add_arguments(parser: argparse.ArgumentParser) -> None:
    for name, port in DEFAULT_PORTS.items():
        parser.add_argument(
            f"--{name}-port", type=int, default=port, help=f"{name} port (default {port}; 0 = any free)"
        )
    parser.add_argument("--no-trace-store", action="store_true", help="do not run the local trace store")
    parser.add_argument(
        "--timeout", type=float, default=300.0, help="seconds to wait for health (default 300)"
    )


def config_from_args(args: argparse.Namespace) -> StackConfig:
    ports = {name: getattr(args, f"{name}_port") or free_port() for name in DEFAULT_PORTS}
    return StackConfig(ports=ports, trace_store=not args.no_trace_store)


def _say(line: str) -> None:
    print(f"modgate up: {line}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    stack = Stack(config_from_args(args))
    received: list[str] = []

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        received.append(signal.Signals(signum).name)

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    try:
        stack.start(timeout_s=args.timeout, say=_say, should_stop=lambda: bool(received))
        _say(
            f"stack ready: gateway {stack.gateway_target}, metrics {stack.metrics_url}, "
            f"state {stack.state_path}. Try `modgate moderate --gateway {stack.gateway_target} FILE`. "
            "Ctrl-C stops everything."
        )
        while not received:
            dead = stack.first_exited()
            if dead is not None:
                _say(f"{dead.name} exited with status {dead.exited()}; stopping the stack. Last log lines:")
                print(dead.log_tail(), file=sys.stderr)
                return 1
            time.sleep(0.2)
        _say(f"{received[0]}: stopping")
        return 0
    except StackInterrupted:
        _say(f"{received[0] if received else 'signal'}: stopped while starting")
        return 0
    except StackError as exc:
        _say(str(exc))
        return 1
    finally:
        stack.stop(say=_say)
