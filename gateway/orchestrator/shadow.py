"""Shadow canaries: a copy of the request's service calls, compared after the verdict is sent.

A route with `shadow` sends the canary the same call as the stable variant. The request never
waits for it: once the verdict is formed, each shadow result is swapped into the request's
fusion input and fused again, and agreement with the decision actually returned is counted
(modgate_gateway_shadow_requests, ..._shadow_disagreements). A shadow never changes the
decision, and its failures are counted and logged, never raised.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from gateway import metrics
from gateway.fusion import DECISION_NAMES, FusionInput, NoVerdict, ScoredText, State, fuse
from gateway.orchestrator.items import transcript_items
from gateway.orchestrator.results import ModalityFailed, modality_failure, pair_texts
from gateway.orchestrator.state import PendingShadow, RunState
from gateway.orchestrator.text_work import TextScorer
from gateway.upstreams.config import OrchestrationSettings
from gateway.upstreams.http import Upstream, UpstreamError
from gateway.upstreams.routing import Route
from gateway.upstreams.services import ServicePool
from modgate.policy import Modality
from modgate.wire import SpeechResult, VisionResult

log = logging.getLogger("gateway.orchestrator")

ServiceCall = Callable[[Upstream, float], Awaitable[Any]]


class Shadows:
    """Sends shadow copies and judges them; owns the background tasks both leave running."""

    def __init__(
        self, pools: dict[str, ServicePool], settings: OrchestrationSettings, text_scorer: TextScorer
    ) -> None:
        self.pools = pools
        self.settings = settings
        self.text_scorer = text_scorer
        self._background: set[asyncio.Task[Any]] = set()

    def send(
        self,
        state: RunState,
        service: str,
        route: Route,
        call: ServiceCall,
        *,
        stream_index: int | None = None,
    ) -> None:
        """Send the canary a copy (of one audio track's call: stream_index); the request never
        waits for it."""
        if not route.shadow:
            return
        canary = self.pools[service].canary
        if canary is None:
            return
        deadline = time.monotonic() + self.settings.shadow_timeout_s
        task = self._in_background(_shadow_call(canary, call, deadline))
        state.shadows.append(PendingShadow(service, task, stream_index))

    def compare(self, state: RunState, decision: int, request_id: str) -> None:
        """Judge the request's shadows against `decision`, after the verdict is sent."""
        if state.shadows:
            self._in_background(self._judge(state, decision, request_id))

    async def aclose(self) -> None:
        for task in list(self._background):
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.gather(*self._background, return_exceptions=True)

    def _in_background(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    async def _judge(self, state: RunState, decision: int, request_id: str) -> None:
        for shadow in state.shadows:
            try:
                result = await shadow.task
            except ModalityFailed as exc:
                metrics.SHADOW_REQUESTS.labels(shadow.service, "failed").inc()
                log.info("shadow %s for request %s failed: %s", shadow.service, request_id, exc.reason)
                continue
            except Exception:  # a shadow must never take anything down with it
                metrics.SHADOW_REQUESTS.labels(shadow.service, "failed").inc()
                log.exception("shadow %s for request %s crashed", shadow.service, request_id)
                continue
            metrics.SHADOW_REQUESTS.labels(shadow.service, "ok").inc()
            await self._judge_result(state, shadow, result, decision, request_id)

    async def _judge_result(
        self, state: RunState, shadow: PendingShadow, result: Any, decision: int, request_id: str
    ) -> None:
        service = shadow.service
        try:
            if service == "speech" and shadow.stream_index is not None:
                alternative = await self._with_shadow_transcript(state, result, shadow.stream_index)
            else:
                alternative = substitute(state, service, result)
        except (ModalityFailed, UpstreamError) as exc:
            log.info("shadow %s for request %s not comparable: %s", service, request_id, exc)
            return
        if alternative is None:
            return
        try:
            shadow_decision = fuse(alternative).decision
        except NoVerdict:
            return
        agree = shadow_decision == decision
        metrics.SHADOW_REQUESTS.labels(service, "agree" if agree else "disagree").inc()
        if not agree:
            metrics.SHADOW_DISAGREEMENTS.labels(service).inc()
            log.warning(
                "shadow disagreement: request %s, %s canary would decide %s, stable decided %s",
                request_id,
                service,
                DECISION_NAMES.get(shadow_decision, "?"),
                DECISION_NAMES.get(decision, "?"),
            )

    async def _with_shadow_transcript(
        self, state: RunState, result: SpeechResult, stream_index: int
    ) -> FusionInput | None:
        """The fusion input had the canary's transcript of one audio track been used: score it
        like the real one (same text variant as the request), then swap it in for that track's."""
        if Modality.AUDIO not in state.outcomes:
            return None
        items = transcript_items(result.segments, stream_index)
        scored: list[ScoredText] = []
        if items:
            results = await self.text_scorer.score(
                self.pools["text"].upstream(state.text_variant),
                items,
                policy=state.policy.name,
                policy_version=state.policy.version,
                deadline=time.monotonic() + self.settings.shadow_timeout_s,
            )
            scored = pair_texts(items, results, state.policy)
        others = [t for t in state.transcript_texts if state.item_streams.get(t.item.id) != stream_index]
        streams = {**state.item_streams, **{item.id: stream_index for item in items}}
        alt = dataclasses.replace(
            state, outcomes=dict(state.outcomes), transcript_texts=others + scored, item_streams=streams
        )
        alt.outcomes[Modality.AUDIO] = dataclasses.replace(
            state.outcomes[Modality.AUDIO], state=State.OK, variant="canary"
        )
        return alt.fusion_input()


async def _shadow_call(canary: Upstream, call: ServiceCall, deadline: float) -> Any:
    try:
        return await call(canary, deadline)
    except UpstreamError as exc:
        raise modality_failure(exc) from None


def substitute(state: RunState, service: str, result: Any) -> FusionInput | None:
    """The fusion input as it would be had the shadow canary's vision or text result been used."""
    if service == "vision" and isinstance(result, VisionResult):
        return _with_frames(state, result)
    if service == "text" and isinstance(result, list):
        return _with_texts(state, result)
    return None


def _with_frames(state: RunState, result: VisionResult) -> FusionInput | None:
    if Modality.VISUAL not in state.outcomes:
        return None
    alt = dataclasses.replace(state, outcomes=dict(state.outcomes))
    alt.frames = list(result.frames)
    alt.frame_model = result.model
    outcome = dataclasses.replace(alt.outcomes[Modality.VISUAL], state=State.OK, variant="canary")
    if not result.model.calibrated:
        outcome.state = State.UNCALIBRATED
    alt.outcomes[Modality.VISUAL] = outcome
    return alt.fusion_input()


def _with_texts(state: RunState, results: list[Any]) -> FusionInput | None:
    # One text shadow per text call: the TEXT sources or the transcript, matched by item ids.
    scored_ids = {s.item.id for s in state.texts}
    items = {s.item.id: s.item for s in (*state.texts, *state.transcript_texts)}
    pairs = [
        ScoredText(item=items[r.id], result=r, model=res.model)
        for res in results
        for r in res.items
        if r.id in items
    ]
    if not pairs:
        return None
    alt = dataclasses.replace(state, outcomes=dict(state.outcomes))
    if all(p.item.id in scored_ids for p in pairs):
        alt.texts = pairs
        modality = Modality.TEXT
    else:
        alt.transcript_texts = pairs
        modality = Modality.AUDIO
    if modality in alt.outcomes:
        alt.outcomes[modality] = dataclasses.replace(alt.outcomes[modality], state=State.OK)
    return alt.fusion_input()
