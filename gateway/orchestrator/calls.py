"""One modality's work against its model services, from the split media to a ModalityOutcome.

  audio  -> speech -> transcript -> text (source "transcript"; counts as AUDIO)
  frames -> vision
  title, description, hashtags, captions, subtitles, metadata -> text
Each call goes to the variant the request's route picked and, for a shadow route, also to the
canary (gateway/orchestrator/shadow.py). Every call gets the modality's deadline; a failed,
late or unusable answer ends the modality as ModalityFailed, which guard() turns into its
outcome (FAILED / TIMED_OUT) so one service never costs the whole verdict.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import numpy as np

from gateway.context import RequestContext
from gateway.fusion import ModalityOutcome, ScoredText, State
from gateway.media.types import SplitMedia
from gateway.orchestrator.items import transcript_items
from gateway.orchestrator.results import (
    ModalityFailed,
    check_policy,
    check_text_variant,
    modality_failure,
    pair_texts,
)
from gateway.orchestrator.shadow import Shadows
from gateway.orchestrator.state import RunState
from gateway.orchestrator.text_work import TextScorer
from gateway.upstreams.config import OrchestrationSettings
from gateway.upstreams.http import Upstream, UpstreamError
from gateway.upstreams.routing import Route
from gateway.upstreams.services import (
    ServicePool,
    encode_jpegs,
    language_hint,
    pcm16,
    score_frames,
    transcribe,
)
from modgate.policy import Modality
from modgate.wire import SpeechResult, TextItem, TextResult, VisionResult

Result = TypeVar("Result")


class ServiceCalls:
    def __init__(
        self,
        pools: dict[str, ServicePool],
        settings: OrchestrationSettings,
        shadows: Shadows,
        text_scorer: TextScorer,
    ) -> None:
        self.pools = pools
        self.settings = settings
        self.shadows = shadows
        self.text_scorer = text_scorer

    def deadline(self, ctx: RequestContext) -> float:
        """When the modalities must be done: the request's deadline minus a margin for fusion
        and the reply. The margin grows with the budget (a tenth of it) up to
        deadline_margin_ms: on a loaded machine 25 ms was too little for long requests
        (verdicts landed after the caller's deadline), while a fixed large margin would starve
        short text-only deadlines."""
        remaining = max(0.0, ctx.deadline - time.monotonic())
        margin = min(self.settings.deadline_margin_ms / 1000.0, max(0.025, remaining * 0.1))
        return ctx.deadline - margin

    async def guard(
        self, modality: Modality, job: Callable[[], Coroutine[Any, Any, ModalityOutcome]]
    ) -> ModalityOutcome:
        started = time.monotonic()
        try:
            return await job()
        except ModalityFailed as exc:
            return ModalityOutcome(
                modality, exc.state, reason=exc.reason, latency_ms=(time.monotonic() - started) * 1000
            )

    async def audio(
        self,
        audio: np.ndarray,
        locale: str,
        routes: dict[str, Route],
        state: RunState,
        ctx: RequestContext,
        deadline: float,
    ) -> ModalityOutcome:
        started = time.monotonic()
        pcm = pcm16(audio)
        language = language_hint(locale)
        speech_route = routes["speech"]

        async def speak(up: Upstream, until: float) -> SpeechResult:
            return await transcribe(up, pcm, language=language, deadline=until)

        self.shadows.send(state, "speech", speech_route, speak)
        result = await self._call("speech", speech_route.primary, "speech", ctx, speak, deadline)
        state.segments = list(result.segments)
        items = transcript_items(result.segments)
        outcome = ModalityOutcome(
            Modality.AUDIO,
            State.OK,
            model=result.model,
            variant=speech_route.primary,
            items=round(result.audio_seconds * 1000),
        )
        if not result.model.calibrated:
            outcome.state = State.UNCALIBRATED
            outcome.reason = f"{result.model.name} reports uncalibrated output"
        if items:
            try:
                state.transcript_texts = await self._score_texts(
                    items, routes["text"], state, ctx, deadline, stage="transcript_text"
                )
            except ModalityFailed as exc:
                raise ModalityFailed(
                    exc.state, f"transcribed, but scoring the transcript failed: {exc.reason}"
                ) from None
        elif result.speech_seconds == 0:
            outcome.reason = "no speech detected"
        outcome.latency_ms = (time.monotonic() - started) * 1000
        return outcome

    async def visual(
        self, media: SplitMedia, route: Route, state: RunState, ctx: RequestContext, deadline: float
    ) -> ModalityOutcome:
        started = time.monotonic()
        jpegs = await asyncio.to_thread(encode_jpegs, media.frames)
        stamps = media.frame_timestamps_ms
        policy = ctx.policy
        per_call = self.settings.vision_frames_per_call

        async def look(up: Upstream, until: float) -> VisionResult:
            return await score_frames(
                up,
                jpegs,
                stamps,
                policy=policy.name,
                policy_version=policy.version,
                deadline=until,
                frames_per_call=per_call,
            )

        self.shadows.send(state, "vision", route, look)
        result = await self._call("vision", route.primary, "vision", ctx, look, deadline)
        check_policy("vision", route.primary, result.policy, policy)
        state.frames = list(result.frames)
        state.frame_model = result.model
        outcome = ModalityOutcome(
            Modality.VISUAL,
            State.OK,
            model=result.model,
            variant=route.primary,
            items=len(result.frames),
            latency_ms=(time.monotonic() - started) * 1000,
        )
        if not result.model.calibrated:
            outcome.state = State.UNCALIBRATED
            outcome.reason = (
                f"{result.model.name} runs without calibrated weights (no pretrained checkpoint); "
                "visual scores are kept out of the decision"
            )
        return outcome

    async def text(
        self, items: list[TextItem], route: Route, state: RunState, ctx: RequestContext, deadline: float
    ) -> ModalityOutcome:
        started = time.monotonic()
        state.texts = await self._score_texts(items, route, state, ctx, deadline, stage="text")
        model = state.texts[0].model if state.texts else None
        outcome = ModalityOutcome(
            Modality.TEXT,
            State.OK,
            model=model,
            variant=route.primary,
            items=len(items),
            latency_ms=(time.monotonic() - started) * 1000,
        )
        if model is not None and not model.calibrated:
            outcome.state = State.UNCALIBRATED
            outcome.reason = f"{model.name} reports uncalibrated scores"
        return outcome

    async def _score_texts(
        self,
        items: list[TextItem],
        route: Route,
        state: RunState,
        ctx: RequestContext,
        deadline: float,
        *,
        stage: str,
    ) -> list[ScoredText]:
        policy = ctx.policy
        scorer = self.text_scorer

        async def score(up: Upstream, until: float) -> list[TextResult]:
            results = await scorer.score(
                up, items, policy=policy.name, policy_version=policy.version, deadline=until
            )
            check_text_variant(results, up.variant, up.url)
            return results

        self.shadows.send(state, "text", route, score)
        results = await self._call("text", route.primary, stage, ctx, score, deadline)
        return pair_texts(items, results, policy)

    async def _call(
        self,
        service: str,
        variant: str,
        stage: str,
        ctx: RequestContext,
        call: Callable[[Upstream, float], Awaitable[Result]],
        deadline: float,
    ) -> Result:
        up = self.pools[service].upstream(variant)
        started = time.monotonic()
        try:
            return await call(up, deadline)
        except UpstreamError as exc:
            raise modality_failure(exc) from None
        finally:
            ctx.record(stage, started)
