"""What the store keeps per verdict, as plain values (no SQLAlchemy, no protobuf parsing).

A VerdictRecord is written once, before the caller gets its reply, and is self-contained: the
verdict as sent, what fusion used to reach it (`fusion`, re-fusable under another policy), the
policy it was decided under (name, version, digest and the document itself, kept once per
digest), the models and variants that served, and the trace id. Never media bytes.
"""

from __future__ import annotations

import base64
import json
import uuid
import zlib
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

DECISIONS = ("ALLOW", "REVIEW", "BLOCK", "UNSPECIFIED")


def new_verdict_id() -> str:
    return uuid.uuid4().hex


def encode_fusion(document: dict[str, Any]) -> bytes:
    """The `fusion` column: compact JSON, zlib level 1 (a 32-frame video's ~20 KB -> ~4 KB)."""
    return zlib.compress(json.dumps(document, separators=(",", ":")).encode("utf-8"), 1)


def decode_fusion(data: bytes) -> dict[str, Any]:
    return json.loads(zlib.decompress(data))


@dataclass(frozen=True)
class PolicyStamp:
    name: str
    version: str
    digest: str
    document: dict[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class Thumbnail:
    """A small JPEG of a frame that VISUAL evidence points at (for the review console)."""

    frame_index: int  # the sampled frame's index in the request (SplitMedia.frames)
    time_ms: int
    width: int
    height: int
    jpeg: bytes
    stream_index: int = 0

    def to_json(self) -> dict[str, Any]:
        values = asdict(self)
        values["jpeg"] = base64.b64encode(self.jpeg).decode("ascii")
        return values

    @classmethod
    def from_json(cls, values: dict[str, Any]) -> Thumbnail:
        return cls(**{**values, "jpeg": base64.b64decode(values["jpeg"])})


@dataclass(frozen=True)
class VerdictRecord:
    verdict_id: str
    caller: str
    request_id: str
    request_digest: str
    content_id: str
    received_at: float  # Unix seconds
    decided_at: float
    decision: str  # one of DECISIONS
    risk: float
    degraded: bool
    policy: PolicyStamp
    trace_id: str
    models: dict[str, dict[str, str]]  # modality -> {name, version, variant}
    fusion: dict[str, Any]  # gateway/orchestrator/record.py's document
    verdict: bytes  # the modgate.v1.Verdict as sent
    # Evidence frames' thumbnails: written with the verdict, read with VerdictStore.thumbnails()
    # (a record read back from the store has none here).
    thumbnails: tuple[Thumbnail, ...] = ()

    def _fields(self) -> dict[str, Any]:
        # Not dataclasses.asdict: it deep-copies `fusion` (tens of KB of nested lists), which
        # cost more than the insert itself.
        return {name: getattr(self, name) for name in self.__dataclass_fields__}

    def row(self) -> dict[str, Any]:
        """The `verdicts` row (the policy document goes to `policies`)."""
        values = self._fields()
        policy = values.pop("policy")
        values.pop("thumbnails")
        values.update(policy_name=policy.name, policy_version=policy.version, policy_digest=policy.digest)
        values["fusion"] = encode_fusion(self.fusion)
        return values

    @classmethod
    def from_row(cls, row: Any, document: dict[str, Any] | None = None) -> VerdictRecord:
        m = row._mapping
        return cls(
            verdict_id=m["verdict_id"],
            caller=m["caller"],
            request_id=m["request_id"],
            request_digest=m["request_digest"],
            content_id=m["content_id"],
            received_at=m["received_at"],
            decided_at=m["decided_at"],
            decision=m["decision"],
            risk=m["risk"],
            degraded=bool(m["degraded"]),
            policy=PolicyStamp(m["policy_name"], m["policy_version"], m["policy_digest"], document or {}),
            trace_id=m["trace_id"],
            models=m["models"],
            fusion=decode_fusion(m["fusion"]),
            verdict=bytes(m["verdict"]),
        )

    def to_json(self) -> str:
        """One spool line (the verdict bytes in base64)."""
        values = self._fields()
        values["policy"] = asdict(self.policy)
        values["verdict"] = base64.b64encode(self.verdict).decode("ascii")
        values["thumbnails"] = [t.to_json() for t in self.thumbnails]
        return json.dumps(values, separators=(",", ":"))

    @classmethod
    def from_json(cls, line: str) -> VerdictRecord:
        values = json.loads(line)
        values["verdict"] = base64.b64decode(values["verdict"])
        values["policy"] = PolicyStamp(**values["policy"])
        values["thumbnails"] = tuple(Thumbnail.from_json(t) for t in values.get("thumbnails", ()))
        return cls(**values)


@dataclass(frozen=True)
class ReplayRow:
    """What replay reads of a stored verdict (VerdictStore.scan_for_replay): the fusion
    document as its JSON (decompressed, not parsed: replay parses and validates it in one
    pass); the policy without its document."""

    COLUMNS: ClassVar[tuple[str, ...]] = (
        "verdict_id",
        "request_id",
        "content_id",
        "decided_at",
        "decision",
        "risk",
        "policy_name",
        "policy_version",
        "policy_digest",
        "verdict",
    )

    verdict_id: str
    request_id: str
    content_id: str
    decided_at: float
    decision: str
    risk: float
    policy: PolicyStamp
    fusion_json: bytes
    verdict: bytes

    @classmethod
    def from_row(cls, row: Any) -> ReplayRow:
        m = row._mapping
        return cls(
            verdict_id=m["verdict_id"],
            request_id=m["request_id"],
            content_id=m["content_id"],
            decided_at=m["decided_at"],
            decision=m["decision"],
            risk=m["risk"],
            policy=PolicyStamp(m["policy_name"], m["policy_version"], m["policy_digest"]),
            fusion_json=zlib.decompress(m["fusion"]),
            verdict=bytes(m["verdict"]),
        )


@dataclass(frozen=True)
class ServedRow:
    """What `modgate canary report` reads of a stored verdict (VerdictStore.scan_served):
    who asked, which variants served it, its decision and times, and the Verdict (per-category
    scores)."""

    COLUMNS: ClassVar[tuple[str, ...]] = (
        "verdict_id",
        "caller",
        "received_at",
        "decided_at",
        "decision",
        "models",
        "verdict",
    )

    verdict_id: str
    caller: str
    received_at: float
    decided_at: float
    decision: str
    models: dict[str, dict[str, str]]
    verdict: bytes

    @classmethod
    def from_row(cls, row: Any) -> ServedRow:
        m = row._mapping
        return cls(**{name: m[name] for name in cls.COLUMNS[:-1]}, verdict=bytes(m["verdict"]))


@dataclass(frozen=True)
class VerdictSummary:
    """A row of `modgate verdicts list`."""

    verdict_id: str
    caller: str
    request_id: str
    content_id: str
    decided_at: float
    decision: str
    risk: float
    degraded: bool
    policy_name: str
    policy_version: str
    trace_id: str
