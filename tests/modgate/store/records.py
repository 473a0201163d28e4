"""VerdictRecords for store tests: small, valid, distinct."""

from __future__ import annotations

import time
from typing import Any

from modgate.store.records import PolicyStamp, VerdictRecord, new_verdict_id

POLICY = PolicyStamp("default", "test-1", "0123456789abcdef", {"name": "default", "version": "test-1"})


def record(
    request_id: str,
    *,
    caller: str = "anonymous",
    decision: str = "ALLOW",
    decided_at: float | None = None,
    content_id: str = "",
    digest: str = "d" * 64,
    fusion: dict[str, Any] | None = None,
) -> VerdictRecord:
    now = time.time() if decided_at is None else decided_at
    return VerdictRecord(
        verdict_id=new_verdict_id(),
        caller=caller,
        request_id=request_id,
        request_digest=digest,
        content_id=content_id,
        received_at=now - 0.5,
        decided_at=now,
        decision=decision,
        risk=0.9 if decision == "BLOCK" else 0.1,
        degraded=False,
        policy=POLICY,
        trace_id="ab" * 16,
        models={"TEXT": {"name": "all-MiniLM-L6-v2", "version": "abc", "variant": "stable"}},
        fusion=fusion or {"version": 1, "kind": "unfused", "reason": "test"},
        verdict=f"verdict of {request_id}".encode(),
    )
