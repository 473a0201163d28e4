"""Runs an evaluation set through the gateway with N concurrent callers and a progress bar.

Each item gets a request id unique to the run (`eval-<run>-<variant>-<item>`), so the verdict
store never answers an evaluation from an earlier run's verdict, and every verdict of the run
can be found in the store afterwards by that prefix.
"""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from tqdm import tqdm

from modgate.client import ModerationClient, ModerationError, Options
from modgate.tools.evaluate.dataset import EvalItem
from modgate.v1 import moderation_pb2 as pb

MODALITY_NAMES = {pb.MODALITY_AUDIO: "AUDIO", pb.MODALITY_VISUAL: "VISUAL", pb.MODALITY_TEXT: "TEXT"}
RETRY_ATTEMPTS = 5
SERVICE_OF_MODALITY = {"AUDIO": "speech", "VISUAL": "vision", "TEXT": "text"}


@dataclass(frozen=True)
class ScoredItem:
    item: EvalItem
    decision: str  # ALLOW | REVIEW | BLOCK, or "ERROR"
    scores: dict[str, float] = field(default_factory=dict)  # category -> fused score
    decided_by: str = "none"  # the modality that carried the top category, "none" for ALLOW
    latency_ms: float = 0.0
    variants: dict[str, str] = field(default_factory=dict)  # service -> variant that served
    error: str = ""
    verdict_id: str = ""

    @property
    def flagged(self) -> bool:
        return self.decision in ("REVIEW", "BLOCK")

    @property
    def top_category(self) -> str:
        """The highest-scoring category: what a flagged verdict is flagged for."""
        return max(self.scores, key=lambda c: self.scores[c]) if self.scores else ""


def scored_from_verdict(item: EvalItem, verdict: pb.Verdict, latency_ms: float) -> ScoredItem:
    scores = {c.category: float(c.score) for c in verdict.categories}
    decision = pb.Decision.Name(verdict.decision).removeprefix("DECISION_")
    decided_by = "none"
    if decision in ("REVIEW", "BLOCK") and verdict.categories:
        top = max(verdict.categories, key=lambda c: c.score)
        if top.by_modality:
            decided_by = max(top.by_modality, key=lambda m: top.by_modality[m])
        elif verdict.evidence:
            decided_by = MODALITY_NAMES.get(verdict.evidence[0].modality, "none")
        if decided_by == "none" and verdict.reasons:
            decided_by = "policy"  # e.g. a failure action or an unmoderated stream
    variants = {
        SERVICE_OF_MODALITY[MODALITY_NAMES[m.modality]]: m.model.variant
        for m in verdict.modalities
        if m.modality in MODALITY_NAMES and m.model.variant
    }
    return ScoredItem(
        item=item,
        decision=decision,
        scores=scores,
        decided_by=decided_by,
        latency_ms=latency_ms,
        variants=variants,
        verdict_id=verdict.verdict_id,
    )


@dataclass(frozen=True)
class RunSettings:
    target: str
    token: str | None = None
    concurrency: int = 4
    timeout_s: float = 120.0
    policy: str = ""
    variant: str = ""  # "" routed by request id, else pinned (needs a pin_variant token)
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:10])
    progress: bool = True


def run_items(items: Sequence[EvalItem], settings: RunSettings) -> list[ScoredItem]:
    """Every item through the gateway; results in the items' order. A refused item is kept as
    decision ERROR with the gateway's message (the report counts them; it never drops them)."""
    label = settings.variant or "routed"
    bar = tqdm(
        total=len(items),
        desc=f"eval {label}",
        unit="item",
        file=sys.stderr,
        disable=not settings.progress,
    )
    with ModerationClient(settings.target, token=settings.token, timeout_s=settings.timeout_s) as client:
        call = _caller(client, settings)

        def one(item: EvalItem) -> ScoredItem:
            try:
                return call(item)
            finally:
                bar.update(1)

        with ThreadPoolExecutor(max_workers=max(1, settings.concurrency)) as pool:
            results = list(pool.map(one, items))
    bar.close()
    return results


def _caller(client: ModerationClient, settings: RunSettings) -> Callable[[EvalItem], ScoredItem]:
    options = Options(variant=settings.variant)
    prefix = f"eval-{settings.run_id}-{settings.variant or 'routed'}"

    def call(item: EvalItem) -> ScoredItem:
        fields: dict[str, object] = {
            "request_id": f"{prefix}-{item.id}"[:128],
            "content_id": item.id[:256],
            "title": item.title,
            "hashtags": item.hashtags,
            "locale": item.locale,
            "policy": settings.policy,
            "options": options,
        }
        for attempt in range(1, RETRY_ATTEMPTS + 1):
            started = time.perf_counter()
            try:
                if item.media is not None:
                    verdict = client.moderate_file(item.media, description=item.text, **fields)
                else:
                    verdict = client.moderate_text(item.text, **fields)
            except ModerationError as exc:
                # Backpressure (admission, a restarting service) is not the model's answer: wait
                # as told and send again; anything else is the item's result.
                if exc.retryable and attempt < RETRY_ATTEMPTS:
                    time.sleep((exc.retry_after_ms or 200 * attempt) / 1000.0)
                    continue
                return ScoredItem(item=item, decision="ERROR", error=f"{exc.code.name}: {exc.details}")
            return scored_from_verdict(item, verdict, (time.perf_counter() - started) * 1000.0)
        raise AssertionError("unreachable: the last attempt returns")

    return call
