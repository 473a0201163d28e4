"""A throwaway BentoML service that logs what its caller sends, for test_log_injection_service.py.

Served with ``bentoml serve tests.modgate.bento_log_probe_service:LogProbe``; wired like the
real services (telemetry set up at import, before BentoML builds its app).
"""

from __future__ import annotations

import logging

import bentoml

from modgate import telemetry

telemetry.setup_telemetry("log-probe", log_level="INFO")
log = logging.getLogger("log_probe")


@bentoml.service(**telemetry.bentoml_tracing_config(), workers=1)
class LogProbe:
    @bentoml.api
    def echo(self, text: str) -> dict[str, int]:
        log.info("probe got %s", text)
        log.warning(f"probe formatted {text}")  # an f-string on purpose: nothing in args to escape
        return {"chars": len(text)}

    @bentoml.api
    def fail(self, text: str) -> dict[str, int]:
        try:
            raise ValueError(f"cannot handle {text}")
        except ValueError:
            log.exception("probe failed for %s", text)
        return {"chars": len(text)}
