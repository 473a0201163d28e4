"""One request's identity, deadline, policy, admission and stage timings, shared by every stage it passes."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from gateway.admission import Ticket
from gateway.cost import WorkCost
from modgate.policy import Policy


@dataclass
class RequestContext:
    request_id: str
    # Absolute time.monotonic() by which the verdict must be returned.
    deadline: float
    policy: Policy
    # Stage name -> wall time in ms, in the order stages ran (queueing, split, speech, fusion...).
    timings: dict[str, float] = field(default_factory=dict)
    # Its admission (slot and work units; the split charges what only it knows) and what was
    # charged at admission. None outside the server (tests, tools).
    ticket: Ticket | None = None
    cost: WorkCost = field(default_factory=WorkCost)
    # What fusion used (gateway/orchestrator/record.py), set by the pipeline that fused: the
    # verdict store keeps it with the verdict, replay re-fuses from it.
    fusion_record: dict[str, Any] | None = None
    # The frames sampled from the media (gateway/media/types.SampledFrame), kept for the
    # ledger's evidence thumbnails (gateway/ledger/thumbnails.py); () without video.
    frames: Sequence[Any] = ()

    @staticmethod
    def new_request_id() -> str:
        return uuid.uuid4().hex

    def remaining_s(self) -> float:
        return self.deadline - time.monotonic()

    def record(self, stage: str, started: float) -> None:
        """Record a stage that began at time.monotonic() == started."""
        self.timings[stage] = self.timings.get(stage, 0.0) + (time.monotonic() - started) * 1000.0
