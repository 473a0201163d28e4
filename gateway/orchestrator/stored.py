"""The fusion document (record.py) read back, typed: FusionDocument.

One pydantic validation per document, from the dict the store decoded or straight from its
JSON text (FusionDocument.read): parsing and validating in one pass in pydantic-core costs
about half of json.loads plus a model_validate per text item and frame, which was most of
replay's time per verdict (bench/replay.py). The fields mirror what record.fused_record
writes; a document of another version or kind is a RecordError, never a guess.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gateway.fusion import State
from gateway.media.limits import StreamsOverLimit
from modgate.banks.rules import ExactFinding
from modgate.banks.signals import SignalType
from modgate.policy import BankAction, Modality
from modgate.wire import FrameScore, HashResult, ModelInfo, TextItem, TextItemResult

VERSION = 1
FUSED = "fused"  # the models ran and were fused
SHORT_CIRCUIT = "short_circuit"  # an exact bank hit decided before splitting
UNFUSED = "unfused"  # nothing was fused (split_only gateways)


class RecordError(ValueError):
    """A stored document this code cannot re-fuse (unknown version or kind)."""


class _Stored(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StoredOutcome(_Stored):
    state: State
    reason: str
    latency_ms: float
    model: ModelInfo | None
    variant: str
    items: int
    ocr_frames: tuple[int, int]
    languages: str = ""  # absent from records written before it existed


class StoredText(_Stored):
    item: TextItem
    result: TextItemResult
    model: ModelInfo


class StoredFinding(_Stored):
    bank: str
    category: str
    action: BankAction
    signal_type: SignalType
    entry_id: str
    short_circuit: bool

    def finding(self) -> ExactFinding:
        return ExactFinding(
            self.bank, self.category, self.action, self.signal_type, self.entry_id, self.short_circuit
        )


class FusionDocument(_Stored):
    version: Literal[1]
    kind: Literal["fused", "short_circuit", "unfused"]
    reason: str = ""  # unfused: why
    outcomes: dict[Modality, StoredOutcome] = Field(default_factory=dict)
    texts: list[StoredText] = Field(default_factory=list)
    frames: list[FrameScore] = Field(default_factory=list)
    frame_model: ModelInfo | None = None
    frame_interval_ms: int = 1000
    item_streams: dict[str, int] = Field(default_factory=dict)
    frame_streams: list[int] = Field(default_factory=list)
    hashes: HashResult | None = None
    exact: list[StoredFinding] = Field(default_factory=list)
    duration_ms: int | None = None
    not_moderated: list[dict[str, Any]] = Field(default_factory=list)
    streams_over_limit: StreamsOverLimit = StreamsOverLimit.REVIEW

    @classmethod
    def read(cls, document: dict[str, Any] | str | bytes) -> FusionDocument:
        """The document as stored (decoded, or its JSON text); RecordError if this code does
        not read it."""
        try:
            if isinstance(document, dict):
                return cls.model_validate(document)
            return cls.model_validate_json(document)
        except ValidationError as exc:
            raise RecordError(_why(document, exc)) from None

    def exact_findings(self) -> list[ExactFinding]:
        return [f.finding() for f in self.exact]


def _why(document: dict[str, Any] | str | bytes, exc: ValidationError) -> str:
    for error in exc.errors():
        where = error["loc"][:1]
        if where == ("version",):
            return f"fusion record version {_field(document, 'version')!r}; this code reads {VERSION}"
        if where == ("kind",):
            return f"unknown fusion record kind {_field(document, 'kind')!r}"
    first = exc.errors()[0]
    return f"unreadable fusion record: {'.'.join(map(str, first['loc']))}: {first['msg']}"


def _field(document: dict[str, Any] | str | bytes, name: str) -> Any:
    if not isinstance(document, dict):
        try:
            document = json.loads(document)
        except ValueError:
            return None
    return document.get(name) if isinstance(document, dict) else None
