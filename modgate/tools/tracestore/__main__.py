"""``python -m modgate.tools.tracestore --port 4318 --db PATH``: run the local OTLP trace store.

Prints one line ``modgate-tracestore listening http=HOST:PORT [grpc=HOST:PORT] db=PATH`` on
stdout once it accepts exports (port 0 picks a free port, so callers read the line), and
exits cleanly on SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from types import FrameType

from modgate.ports import HOST, TRACE_STORE_PORT
from modgate.telemetry import configure_logging
from modgate.tools.tracestore import TraceStore, default_db_path
from modgate.tools.tracestore.server import make_grpc_server, make_http_server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m modgate.tools.tracestore", description=__doc__)
    parser.add_argument("--host", default=HOST, help=f"bind address (default {HOST})")
    parser.add_argument(
        "--port",
        type=int,
        default=TRACE_STORE_PORT,
        help=f"OTLP/HTTP port (default {TRACE_STORE_PORT}; 0 = any free)",
    )
    parser.add_argument(
        "--grpc-port", type=int, default=None, help="also receive OTLP/gRPC on this port (0 = any free)"
    )
    parser.add_argument(
        "--db", default=None, help="SQLite file (default MODGATE_TRACE_DB or ~/.modgate/traces.db)"
    )
    parser.add_argument("--max-spans", type=int, default=200_000, help="oldest spans beyond this are pruned")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)

    configure_logging(args.log_level.upper(), service="tracestore")
    log = logging.getLogger("modgate.tools.tracestore")
    db_path = args.db or default_db_path()
    store = TraceStore(db_path, max_spans=args.max_spans)
    try:
        http_server = make_http_server(store, args.host, args.port)
    except OSError as exc:
        print(
            f"modgate-tracestore: cannot listen on {args.host}:{args.port}: {exc} "
            "(another trace store running? pick --port)",
            file=sys.stderr,
        )
        store.close()
        return 1
    grpc_server = None
    where = f"http={args.host}:{http_server.server_address[1]}"
    if args.grpc_port is not None:
        grpc_server, grpc_port = make_grpc_server(store, args.host, args.grpc_port)
        where += f" grpc={args.host}:{grpc_port}"

    def stop(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %d: stopping", signum)
        # shutdown() blocks until serve_forever returns, so not from the serving thread.
        threading.Thread(target=http_server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"modgate-tracestore listening {where} db={db_path}", flush=True)
    try:
        http_server.serve_forever(poll_interval=0.2)
    finally:
        http_server.server_close()
        if grpc_server is not None:
            grpc_server.stop(grace=1.0).wait()
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
