"""A throwaway BentoML service wired like the real ones, for test_bentoml_tracing.py.

Served with ``bentoml serve tests.modgate.bento_probe_service:Probe``.
"""

from __future__ import annotations

import bentoml

from modgate import telemetry

# At import, before BentoML builds its app: BentoML's server span then uses this provider.
telemetry.setup_telemetry("bento-probe")


@bentoml.service(**telemetry.bentoml_tracing_config(), workers=1)
class Probe:
    @bentoml.api
    def work(self, text: str) -> dict[str, str | int]:
        with telemetry.span(
            "probe.inference", {telemetry.Attr.BATCH_SIZE: 1, telemetry.Attr.MODEL_ID: "probe@0"}
        ):
            return {"trace_id": telemetry.current_trace_id(), "chars": len(text)}
