"""What fusion used, as a JSON document the verdict store keeps, and re-fusion from it.

Written for every verdict (the verdict store's `fusion` column), read by replay: a stored
document plus a policy gives the decision that policy would have reached, without calling a
model. It holds each modality's outcome (state, reason, model, variant), every scored text
item with its per-category scores and matches (TEXT sources, transcript segments as AUDIO,
on-screen text as VISUAL), every frame's per-category scores, the frames' PDQ hashes and bank
matches, the exact bank hits, and the streams no modality saw. Scores are what the services
returned, before the policy's weights and thresholds: those are applied again by refuse(),
which reads the document back as a typed FusionDocument (stored.py) and judges the exact bank
hits under the policy it is given, as the gateway would have.

What a policy change needs a rescan for (prompts, exemplars, blocklists, lexicons, banks:
they change the scores themselves) is replay's business (gateway/replay/inputs.py).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from gateway.fusion import Fused, FusionInput, ModalityOutcome, ScoredText, State, fuse
from gateway.media.limits import StreamsOverLimit
from gateway.media.types import SplitMedia, StreamKind, StreamReport
from gateway.orchestrator.coverage import with_coverage
from gateway.orchestrator.hashes import short_circuit_fused, video_findings, with_bank_findings
from gateway.orchestrator.state import RunState
from gateway.orchestrator.stored import FUSED, SHORT_CIRCUIT, UNFUSED, VERSION, FusionDocument, RecordError
from modgate.banks.rules import ExactFinding
from modgate.policy import BankAction, Policy
from modgate.wire import ModelInfo


def _model(model: ModelInfo | None) -> dict[str, Any] | None:
    return None if model is None else model.model_dump(mode="json")


def fused_record(
    state: RunState,
    exact: list[ExactFinding],
    media: SplitMedia | None,
    over_limit: StreamsOverLimit,
) -> dict[str, Any]:
    inp = state.fusion_input()
    return {
        "version": VERSION,
        "kind": FUSED,
        "outcomes": {m.value: _outcome(o) for m, o in inp.outcomes.items()},
        "texts": [
            {
                "item": t.item.model_dump(mode="json", exclude_none=True),
                "result": t.result.model_dump(mode="json"),
                "model": _model(t.model),
            }
            for t in inp.texts
        ],
        "frames": [f.model_dump(mode="json", exclude_none=True) for f in inp.frames],
        "frame_model": _model(inp.frame_model),
        "frame_interval_ms": inp.frame_interval_ms,
        "item_streams": inp.item_streams,
        "frame_streams": inp.frame_streams,
        "hashes": None if state.hashes is None else state.hashes.model_dump(mode="json"),
        "exact": [_finding(f) for f in exact],
        "duration_ms": media.info.duration_ms if media is not None and media.info.duration_ms else None,
        "not_moderated": [] if media is None else [_stream(r) for r in media.info.not_moderated()],
        "streams_over_limit": over_limit.value,
    }


def short_circuit_record(exact: list[ExactFinding]) -> dict[str, Any]:
    return {"version": VERSION, "kind": SHORT_CIRCUIT, "exact": [_finding(f) for f in exact]}


def unfused_record(reason: str) -> dict[str, Any]:
    return {"version": VERSION, "kind": UNFUSED, "reason": reason}


def _outcome(outcome: ModalityOutcome) -> dict[str, Any]:
    return {
        "state": outcome.state.value,
        "reason": outcome.reason,
        "latency_ms": outcome.latency_ms,
        "model": _model(outcome.model),
        "variant": outcome.variant,
        "items": outcome.items,
        "ocr_frames": list(outcome.ocr_frames),
        "languages": outcome.languages,
    }


def _finding(finding: ExactFinding) -> dict[str, Any]:
    values = dataclasses.asdict(finding)
    values.update(action=finding.action.value, signal_type=finding.signal_type.value)
    return values


def _stream(report: StreamReport) -> dict[str, Any]:
    return {**dataclasses.asdict(report), "kind": report.kind.value}


def models_of(record: dict[str, Any]) -> dict[str, dict[str, str]]:
    """modality -> {name, version, variant} of what served it (the store's `models` column)."""
    models = {}
    for modality, outcome in record.get("outcomes", {}).items():
        if outcome["state"] == State.SKIPPED.value:
            continue
        model = outcome.get("model") or {}
        models[modality] = {
            "name": model.get("name", ""),
            "version": model.get("version", ""),
            "variant": outcome.get("variant", "stable"),
        }
    return models


# --- reading back ----------------------------------------------------------------------------------


class ModelsNeverRan(RecordError):
    """An exact bank hit short-circuited the stored request, and the policy asked about lets
    the models run: there are no scores to re-fuse (only a rescan can tell)."""


def exact_findings(record: dict[str, Any] | FusionDocument) -> list[ExactFinding]:
    document = record if isinstance(record, FusionDocument) else FusionDocument.read(record)
    return document.exact_findings()


def findings_under(policy: Policy, findings: list[ExactFinding]) -> list[ExactFinding]:
    """Stored exact hits as `policy` judges them, as evaluate_exact does at the gateway: each
    bank's category, action and short-circuit from `policy`'s rule, hits in banks it does not
    name dropped, short-circuiting ones first."""
    judged = [
        dataclasses.replace(
            f, category=rule.category, action=rule.action, short_circuit=rule.exact_short_circuit
        )
        for f in findings
        if (rule := policy.banks.get(f.bank)) is not None
    ]
    return sorted(judged, key=lambda f: (not f.short_circuit, f.action != BankAction.BLOCK, f.bank))


def fusion_input(document: FusionDocument, policy: Policy) -> FusionInput:
    outcomes = {
        modality: ModalityOutcome(
            modality=modality,
            state=o.state,
            reason=o.reason,
            latency_ms=o.latency_ms,
            model=o.model,
            variant=o.variant,
            items=o.items,
            ocr_frames=o.ocr_frames,
            languages=o.languages,
        )
        for modality, o in document.outcomes.items()
    }
    return FusionInput(
        policy=policy,
        outcomes=outcomes,
        texts=[ScoredText(item=t.item, result=t.result, model=t.model) for t in document.texts],
        frames=list(document.frames),
        frame_model=document.frame_model,
        frame_interval_ms=document.frame_interval_ms,
        item_streams=dict(document.item_streams),
        frame_streams=list(document.frame_streams),
    )


def refuse(record: dict[str, Any] | FusionDocument, policy: Policy) -> Fused | None:
    """The decision `policy` reaches on a stored document (as stored, or read with
    FusionDocument.read), as Orchestrator.run forms it: fusion, then the bank findings, then
    the streams no modality saw. None for an unfused record. Raises RecordError for a document
    this code does not read, NoVerdict when the policy forbids a degraded verdict (the request
    would have failed), ModelsNeverRan when the stored request short-circuited and `policy`
    would not."""
    document = record if isinstance(record, FusionDocument) else FusionDocument.read(record)
    if document.kind == UNFUSED:
        return None
    exact = findings_under(policy, document.exact_findings())
    if any(f.short_circuit for f in exact):  # decided before splitting, as Orchestrator.run does
        return short_circuit_fused(policy, exact)
    if document.kind == SHORT_CIRCUIT:
        raise ModelsNeverRan(
            "an exact bank hit short-circuited this request; under this policy the models would "
            "have run, and no model scored it: only a rescan can tell"
        )
    fused = fuse(fusion_input(document, policy))
    hashes, frame_streams, duration = document.hashes, document.frame_streams, document.duration_ms
    video = video_findings(policy, hashes, duration_ms=duration, frame_streams=frame_streams)
    fused = with_bank_findings(
        fused,
        policy,
        video,
        exact,
        hashes=hashes,
        frame_streams=frame_streams,
        duration_ms=duration,
    )
    missing = [StreamReport(**{**s, "kind": StreamKind(s["kind"])}) for s in document.not_moderated]
    return with_coverage(fused, missing, document.streams_over_limit)
