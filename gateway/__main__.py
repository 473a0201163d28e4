"""`python -m gateway`: run the gRPC gateway (configuration from MODGATE_GATEWAY_* env vars, wiring in
gateway/app.py)."""

from __future__ import annotations

import asyncio
import os
import sys

from pydantic import ValidationError

from gateway.app import serve
from gateway.config import GatewayConfig
from modgate import telemetry
from modgate.policy import PolicyError


def main() -> int:
    try:
        # Before anything logs or builds the server: one tracer provider (OTEL_* env) and the
        # trace/span id in every log line.
        telemetry.setup_telemetry(
            "gateway", log_level=os.environ.get("MODGATE_GATEWAY_LOG_LEVEL", "INFO").upper()
        )
        config = GatewayConfig()
        asyncio.run(serve(config))
    except (ValidationError, PolicyError, ValueError, OSError) as exc:
        print(f"modgate gateway: cannot start: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    finally:
        telemetry.shutdown()  # flush the last spans (bounded by the short export timeout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
