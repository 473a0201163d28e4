"""A fast stand-in for `bentoml serve`, shaped like it where supervision is concerned.

    python fake_service.py PORT            the leader (like BentoML's circus arbiter)
    python fake_service.py PORT --worker   what the leader runs

The leader starts a worker in a session of its own (circus calls setsid) that listens on PORT
and answers GET /readyz; it starts another when the worker dies, and stops its worker on
SIGTERM. So SIGKILL of the leader's process group leaves the worker running with parent 1,
holding the port, exactly what a BentoML service does.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from types import FrameType


class Ready(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/readyz" else 404)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


def worker(port: int) -> None:
    HTTPServer(("127.0.0.1", port), Ready).serve_forever()


def leader(port: int) -> None:
    child: subprocess.Popen[bytes] | None = None

    def stop(_signum: int, _frame: FrameType | None) -> None:
        if child is not None:
            child.terminate()
            child.wait(timeout=5)
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    while True:
        child = subprocess.Popen([sys.executable, __file__, str(port), "--worker"], start_new_session=True)
        print(f"worker {child.pid}", flush=True)
        child.wait()
        time.sleep(0.3)  # then respawn, as circus does


if __name__ == "__main__":
    if "--worker" in sys.argv:
        worker(int(sys.argv[1]))
    else:
        leader(int(sys.argv[1]))
