"""`modgate up`: start the local stack, keep it running until a signal, then stop it.

Progress and the addresses go to stderr. Once the stack is healthy it is supervised: a
process that dies is restarted with backoff and each restart is reported here and in the
state file (:mod:`.supervisor`); the rest keeps running. SIGINT / SIGTERM / SIGHUP stop
everything, BentoML's workers included, wherever they run (:mod:`.markers`).
"""

from __future__ import annotations

import argparse
import signal
import sys
from types import FrameType

from modgate.ports import CONSOLE_PORT, DEFAULT_PORTS
from modgate.tools.stack.process import free_port
from modgate.tools.stack.specs import StackConfig
from modgate.tools.stack.stack import Stack, StackError, StackInterrupted
from modgate.tools.stack.supervisor import RestartPolicy


def add_arguments(parser: argparse.ArgumentParser) -> None:
    for name, port in DEFAULT_PORTS.items():
        parser.add_argument(
            f"--{name}-port", type=int, default=port, help=f"{name} port (default {port}; 0 = any free)"
        )
    parser.add_argument("--no-trace-store", action="store_true", help="do not run the local trace store")
    parser.add_argument(
        "--console-port",
        type=int,
        default=CONSOLE_PORT,
        help=f"review console port (default {CONSOLE_PORT}; 0 = any free)",
    )
    parser.add_argument("--no-console", action="store_true", help="do not run the review console")
    parser.add_argument(
        "--log-format",
        choices=("text", "json"),
        help="log line format of every process (default: $MODGATE_LOG_FORMAT, else text)",
    )
    parser.add_argument(
        "--timeout", type=float, default=300.0, help="seconds to wait for health (default 300)"
    )


def config_from_args(args: argparse.Namespace) -> StackConfig:
    ports = {name: getattr(args, f"{name}_port") or free_port() for name in DEFAULT_PORTS}
    env = {"MODGATE_LOG_FORMAT": args.log_format} if args.log_format else {}
    return StackConfig(
        ports=ports,
        trace_store=not args.no_trace_store,
        env={name: dict(env) for name in ("traces", "speech", "vision", "text", "gateway", "console")},
        console_port=None if args.no_console else (args.console_port or free_port()),
    )


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
            f"state {stack.state_path}"
            + (f", review console {stack.console_url}" if stack.console_url else "")
            + f". Try `modgate moderate --gateway {stack.gateway_target} FILE`. "
            "A process that dies is restarted; Ctrl-C stops everything."
        )
        policy = RestartPolicy(ready_timeout_s=args.timeout, unhealthy_restart_s=args.timeout)
        stack.supervise(lambda: bool(received), policy=policy, say=_say)
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
