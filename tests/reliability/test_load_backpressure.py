"""Bounded load on the real stack (modgate.tools.load, short version): 8 callers against a gateway
with 3 slots. The excess is shed at once with RESOURCE_EXHAUSTED + retry-after-ms rather than
queued; admitted requests keep a bounded latency; nothing hangs.

The 60 s version is `python -m bench.load --start-stack` (and the slow test below)."""

from __future__ import annotations

import pytest

from modgate.tools.load import Work, run_load, summarize
from modgate.tools.stack import Stack
from tests.reliability.conftest import MAX_INFLIGHT

CLIENTS = 8
DEADLINE_S = 10.0


def check_load(stack: Stack, works: list[Work], duration_s: float) -> dict[str, object]:
    outcomes = run_load(
        stack.gateway_target, works, clients=CLIENTS, duration_s=duration_s, deadline_s=DEADLINE_S
    )
    summary = summarize(outcomes, duration_s)
    print(f"\nload {CLIENTS} clients x {duration_s:.0f} s, {MAX_INFLIGHT} slots: {summary}")

    assert summary["hung"] == 0
    # Only verdicts and the overload answer: no errors, no deadline misses.
    assert set(summary["statuses"]) <= {"OK", "RESOURCE_EXHAUSTED"}, summary["statuses"]
    ok = summary["statuses"].get("OK", 0)
    assert ok >= 5 and summary["by_kind"]["video"]["ok"] >= 1 and summary["by_kind"]["text"]["ok"] >= 1
    # Backpressure: more callers than slots means some were refused, each with a retry hint,
    # and refused at once (not after waiting in a queue).
    shed = summary["shed"]
    assert shed["count"] > 0 and shed["with_retry_after"] == shed["count"]
    assert shed["retry_after_ms"]["min"] >= 500
    assert shed["latency_ms"]["p95"] < 1000
    # Admitted requests finish well inside their deadline.
    assert summary["latency_ok_ms"]["p99"] < DEADLINE_S * 1000
    # No service is down: no modality failed or timed out, so no verdict is degraded (vision
    # runs uncalibrated offline, which the default policy ignores by design: not degraded).
    broken = [
        o for o in outcomes if o.status == "OK" and {"FAILED", "TIMED_OUT"} & set(o.modalities.values())
    ]
    assert not broken, [o.modalities for o in broken[:5]]
    assert summary["degraded"] == 0, summary["modality_states"]
    return summary


@pytest.mark.timeout(600)
def test_load_is_bounded_and_sheds_with_retry_after(stack: Stack, works: list[Work]) -> None:
    check_load(stack, works, duration_s=12.0)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_load_for_a_minute(stack: Stack, works: list[Work]) -> None:
    check_load(stack, works, duration_s=60.0)
