"""The `modgate` command (`python -m modgate.tools.cli`). Each subcommand lives in its own
module exposing `add_arguments(parser)` and `run(args) -> int`. All of them are imported to
build the parser, so none may import torch or the model services at module level (media
generation is imported where it is used): `modgate trace` stays quick to start."""

from __future__ import annotations

import argparse
import importlib
import sys

# subcommand -> (module, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "up": ("modgate.tools.stack.up", "start the local stack (3 model services + gateway + trace store)"),
    "down": ("modgate.tools.stack.down", "stop the local stack and whatever a dead `modgate up` left"),
    "moderate": ("modgate.tools.moderate_cmd", "moderate a video file or text through the gateway"),
    "trace": ("modgate.tools.trace_cmd", "print a stored trace as a waterfall"),
    "demo": ("modgate.tools.demo", "start the stack, moderate a generated sample video, print, stop"),
    "bank": ("modgate.banks.cli", "fill, list and export hash banks (PDQ, MD5, SHA-256)"),
    "verdicts": ("modgate.tools.verdicts_cmd", "list, show and prune the stored verdicts"),
    "replay": ("modgate.tools.replay_cmd", "re-fuse stored verdicts under another policy: what would change"),
    "eval": ("modgate.tools.eval_cmd", "a labelled set through the gateway: precision/recall per category"),
    "canary": ("modgate.tools.canary.cmd", "compare a canary with stable: PROMOTE / HOLD / ROLLBACK"),
    "console": (
        "modgate.console.serve",
        "the review console: web pages for the REVIEW queue (127.0.0.1:8080)",
    ),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="modgate", description="multimodal moderation")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        sub_parser = sub.add_parser(name, help=help_text, description=help_text)
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue  # subcommand not built in this checkout
        module.add_arguments(sub_parser)
        sub_parser.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    run = getattr(args, "_run", None)
    if run is None:
        print(f"modgate: '{args.command}' is not available in this build", file=sys.stderr)
        return 2
    return int(run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
