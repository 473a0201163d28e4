"""`python -m gateway`: run the gRPC gateway (configuration from MODGATE_GATEWAY_* env vars)."""

from __future__ import annotations

import asyncio
import logging
import os
import sys

from pydantic import ValidationError

from gateway.config import GatewayConfig
from gateway.server import serve
from modgate.policy import PolicyError


def main() -> int:
    logging.basicConfig(
        level=os.environ.get("MODGATE_GATEWAY_LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        config = GatewayConfig()
        asyncio.run(serve(config))
    except (ValidationError, PolicyError, ValueError, OSError) as exc:
        print(f"modgate gateway: cannot start: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
