"""`modgate console` / `python -m modgate.console`: run the review console under uvicorn.

uvicorn's own access log is off (it prints query strings); security.AccessLog writes one line
per request without them.
"""

from __future__ import annotations

import argparse
import logging
import sys

from pydantic import ValidationError

from modgate.console.config import ConsoleSettings
from modgate.store.store import StoreUnavailable
from modgate.telemetry.logs import configure_logging

log = logging.getLogger("modgate.console")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="bind address (default MODGATE_CONSOLE_HOST, else 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default MODGATE_CONSOLE_PORT, else 8080)")


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from modgate.console.app import create_app

    try:
        settings = ConsoleSettings()
        overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
        settings = settings.model_copy(update=overrides)
        configure_logging(settings.log_level.upper(), service="console")
        app = create_app(settings)
    except (ValidationError, StoreUnavailable, ValueError, OSError) as exc:
        print(f"modgate console: cannot start: {exc}", file=sys.stderr)
        return 2
    if not settings.tokens_file.exists():
        log.warning(
            "no tokens file at %s: nobody can log in; create users with "
            "`python -m modgate.console.users new --user NAME --role reviewer --file %s`",
            settings.tokens_file,
            settings.tokens_file,
        )
    if settings.host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("the console listens on %s, beyond this machine: serve it behind TLS", settings.host)
    log.info("review console on http://%s:%d", settings.host, settings.port)
    uvicorn.run(app, host=settings.host, port=settings.port, access_log=False, log_config=None)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m modgate.console")
    add_arguments(parser)
    return run(parser.parse_args(argv))
