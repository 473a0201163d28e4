"""What a replay found: ReplayReport (and its JSON), built up record by record by the engine.

- matrix: stored decision -> replayed decision counts (ALLOW / REVIEW / BLOCK, and ERROR: the
  new policy forbids a degraded verdict there, so the request would have failed), over the
  verdicts whose stored scores the new policy still trusts;
- rescan: the same for the verdicts whose stored scores a changed scoring input made stale
  (replayed anyway, flagged not trustworthy), with the fields that did it;
- not_refused: records no decision can be re-fused from (unfused, unknown record version,
  short-circuited where the new policy would run the models);
- thresholds: per category, how many trusted verdicts newly cross (or fall below) its review
  and block thresholds;
- top: the biggest changes (largest decision jump, then largest risk change), with the new
  evidence.
"""

from __future__ import annotations

import heapq
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from gateway.fusion import DECISION_NAMES, Fused
from gateway.replay.inputs import MISSING, InputChange
from modgate.v1 import moderation_pb2 as pb

ERROR = "ERROR"
TARGETS = ("ALLOW", "REVIEW", "BLOCK", ERROR)
RANK = {"ALLOW": 0, "REVIEW": 1, "BLOCK": 2}
RISK_EPSILON = 1e-6  # stored risk is a float32 (the proto's): closer than this is unchanged
EVIDENCE_PER_CHANGE = 5
MODALITY_NAMES = {pb.MODALITY_AUDIO: "AUDIO", pb.MODALITY_VISUAL: "VISUAL", pb.MODALITY_TEXT: "TEXT"}
SOURCE_NAMES = {value: name.removeprefix("SOURCE_").lower() for name, value in pb.Source.items()}


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass
class Change:
    """One verdict the new policy decides differently (or at a different risk)."""

    verdict_id: str
    decided_at: float
    content_id: str
    request_id: str
    policy: str  # name@version it was decided under
    stored: str
    replayed: str
    stored_risk: float
    replayed_risk: float
    needs_rescan: bool
    fused: Fused

    @property
    def jump(self) -> int:
        return abs(RANK.get(self.replayed, 0) - RANK.get(self.stored, 0))

    @property
    def risk_change(self) -> float:
        return self.replayed_risk - self.stored_risk

    def to_json(self) -> dict[str, Any]:
        return {
            "verdict_id": self.verdict_id,
            "decided_at": iso(self.decided_at),
            "content_id": self.content_id,
            "request_id": self.request_id,
            "policy": self.policy,
            "stored": self.stored,
            "replayed": self.replayed,
            "stored_risk": round(self.stored_risk, 4),
            "replayed_risk": round(self.replayed_risk, 4),
            "needs_rescan": self.needs_rescan,
            "evidence": [evidence_json(e) for e in self.evidence()],
            "reasons": list(self.fused.reasons),
        }

    def evidence(self) -> list[pb.Evidence]:
        """The new evidence, that of the categories whose decision changed first."""
        acting = {c.category for c in self.fused.categories if c.decision != pb.DECISION_ALLOW}
        ranked = sorted(self.fused.evidence, key=lambda e: e.category not in acting)
        return ranked[:EVIDENCE_PER_CHANGE]


def evidence_json(evidence: pb.Evidence) -> dict[str, Any]:
    return {
        "modality": MODALITY_NAMES.get(evidence.modality, "UNSPECIFIED"),
        "category": evidence.category,
        "score": round(evidence.score, 4),
        "source": SOURCE_NAMES.get(evidence.source, "unspecified"),
        "start_ms": evidence.start_ms,
        "end_ms": evidence.end_ms,
        "snippet": evidence.snippet,
        "signal": evidence.signal,
    }


@dataclass
class Tally:
    """A decision-change matrix: stored -> replayed counts."""

    rows: dict[str, Counter[str]] = field(default_factory=dict)

    def add(self, stored: str, replayed: str) -> None:
        self.rows.setdefault(stored, Counter())[replayed] += 1

    def merge(self, other: Tally) -> None:
        for stored, row in other.rows.items():
            self.rows.setdefault(stored, Counter()).update(row)

    @property
    def total(self) -> int:
        return sum(sum(row.values()) for row in self.rows.values())

    @property
    def changed(self) -> int:
        return sum(n for stored, row in self.rows.items() for to, n in row.items() if to != stored)

    def to_json(self) -> dict[str, dict[str, int]]:
        order = [*RANK, *sorted(k for k in self.rows if k not in RANK)]
        return {s: {t: self.rows[s][t] for t in TARGETS} for s in order if s in self.rows}


@dataclass
class StaleField:
    """A scoring input that changed: the verdicts holding scores it makes stale."""

    change: InputChange
    policies: set[str] = field(default_factory=set)
    verdicts: int = 0

    def to_json(self) -> dict[str, Any]:
        c = self.change
        return {
            "path": c.path,
            "message": c.describe(),
            "scopes": sorted(c.rescan),
            "why": c.why,
            "old": None if c.old is MISSING else c.old,
            "new": None if c.new is MISSING else c.new,
            "policies": sorted(self.policies),
            "verdicts": self.verdicts,
        }


@dataclass
class ReplayReport:
    policy: dict[str, str]  # name, version, digest of the policy replayed under
    since: float | None
    limit: int | None
    scanned: int = 0
    seconds: float = 0.0
    matrix: Tally = field(default_factory=Tally)
    rescan: Tally = field(default_factory=Tally)
    not_refused: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)  # NoVerdict messages -> count
    thresholds: dict[str, Counter[str]] = field(default_factory=dict)
    stale: dict[str, StaleField] = field(default_factory=dict)  # path -> field
    refusable: dict[str, tuple[InputChange, set[str]]] = field(default_factory=dict)
    top_k: int = 10
    # (jump, |risk change|, -position in scan order, change): the smallest of the kept on top.
    _heap: list[tuple[int, float, int, Change]] = field(default_factory=list, repr=False)

    @property
    def verdicts_per_s(self) -> float:
        return self.scanned / self.seconds if self.seconds > 0 else 0.0

    @property
    def top(self) -> list[Change]:
        return [entry[3] for entry in sorted(self._heap, reverse=True)]

    def offer(self, change: Change, position: int) -> None:
        """Keep `change` (the record at `position` in scan order) if it is among the top_k
        biggest so far; among equals the earlier record."""
        self._keep((change.jump, abs(change.risk_change), -position, change))

    def _keep(self, key: tuple[int, float, int, Change]) -> None:
        if len(self._heap) < self.top_k:
            heapq.heappush(self._heap, key)
        elif key[:3] > self._heap[0][:3]:
            heapq.heapreplace(self._heap, key)

    def merge(self, other: ReplayReport) -> None:
        """Add another part of the same replay (another process's share of the records)."""
        self.scanned += other.scanned
        self.matrix.merge(other.matrix)
        self.rescan.merge(other.rescan)
        self.not_refused.update(other.not_refused)
        self.errors.update(other.errors)
        for category, counts in other.thresholds.items():
            self.thresholds.setdefault(category, Counter()).update(counts)
        for path, stale in other.stale.items():
            mine = self.stale.setdefault(path, StaleField(stale.change))
            mine.policies |= stale.policies
            mine.verdicts += stale.verdicts
        for path, (change, policies) in other.refusable.items():
            self.refusable.setdefault(path, (change, set()))[1].update(policies)
        for key in other._heap:
            self._keep(key)

    def crossed(self, old: dict[str, int], new: list[pb.CategoryScore]) -> None:
        """Count each category whose decision crossed a threshold between `old` (stored) and `new`."""
        for category in new:
            before, after = old.get(category.category, pb.DECISION_ALLOW), category.decision
            if before == after:
                continue
            counts = self.thresholds.setdefault(category.category, Counter())
            for level, name in ((pb.DECISION_REVIEW, "review"), (pb.DECISION_BLOCK, "block")):
                if before < level <= after:
                    counts[f"crossed_{name}"] += 1
                elif after < level <= before:
                    counts[f"fell_below_{name}"] += 1

    def to_json(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "since": None if self.since is None else iso(self.since),
            "limit": self.limit,
            "scanned": self.scanned,
            "refused": self.matrix.total + self.rescan.total,
            "seconds": round(self.seconds, 3),
            "verdicts_per_s": round(self.verdicts_per_s, 1),
            "matrix": self.matrix.to_json(),
            "changed": self.matrix.changed,
            "needs_rescan": {
                "verdicts": self.rescan.total,
                "changed": self.rescan.changed,
                "matrix": self.rescan.to_json(),
                "fields": [f.to_json() for f in self.stale.values()],
            },
            "refusable_changes": [
                {
                    "path": c.path,
                    "old": None if c.old is MISSING else c.old,
                    "new": None if c.new is MISSING else c.new,
                    "why": c.why,
                    "policies": sorted(policies),
                }
                for c, policies in self.refusable.values()
            ],
            "not_refused": dict(self.not_refused),
            "errors": dict(self.errors),
            "thresholds": {name: dict(counts) for name, counts in sorted(self.thresholds.items())},
            "top_changes": [c.to_json() for c in self.top],
        }


def decision_name(decision: int) -> str:
    return DECISION_NAMES.get(decision, "UNSPECIFIED")
