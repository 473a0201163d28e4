"""One modality's work against its model services, from the split media to a ModalityOutcome.

  audio  -> speech -> transcript -> text (source "transcript"; counts as AUDIO), per audio track
  frames -> vision (-> on-screen text it read -> text, source "on_screen_text"; counts as VISUAL)
  title, description, hashtags, captions, subtitles, metadata -> text
Each call goes to the variant the request's route picked and, for a shadow route, also to the
canary (gateway/orchestrator/shadow.py). Every call gets the modality's deadline; a failed,
late or unusable answer ends the modality as ModalityFailed, which guard() turns into its
outcome (FAILED / TIMED_OUT) so one service never costs the whole verdict.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, TypeVar

from gateway.context import RequestContext
from gateway.fusion import ModalityOutcome, ScoredText, State
from gateway.media.types import AudioTrack, SplitMedia
from gateway.orchestrator import ocr
from gateway.orchestrator.items import transcript_items
from gateway.orchestrator.results import (
    ModalityFailed,
    check_policy,
    check_text_variant,
    modality_failure,
    pair_texts,
)
from gateway.orchestrator.shadow import Shadows
from gateway.orchestrator.state import RunState, TrackSegment
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
from modgate.wire import OcrResult, SpeechResult, TextItem, TextResult, VisionResult

Result = TypeVar("Result")


async def all_or_none(jobs: Sequence[Coroutine[Any, Any, Result]]) -> list[Result]:
    """Every job's result, in order; the first failure cancels the rest and is raised."""
    tasks = [asyncio.create_task(job) for job in jobs]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


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
        tracks: Sequence[AudioTrack],
        locale: str,
        routes: dict[str, Route],
        state: RunState,
        ctx: RequestContext,
        deadline: float,
    ) -> ModalityOutcome:
        """Every audio track transcribed and its transcript scored, speech_tracks_in_flight at
        a time. One track failing fails the modality (the others are cancelled), as one failed
        vision chunk does: AUDIO either saw every track it was given or counts as not run."""
        started = time.monotonic()
        language = language_hint(locale)
        slots = asyncio.Semaphore(self.settings.speech_tracks_in_flight)
        several = len(tracks) > 1

        async def hear(track: AudioTrack) -> tuple[SpeechResult, list[ScoredText]]:
            async with slots:
                try:
                    return await self._track(track, language, routes, state, ctx, deadline)
                except ModalityFailed as exc:
                    if not several:
                        raise
                    raise ModalityFailed(
                        exc.state, f"audio track {track.stream_index}: {exc.reason}"
                    ) from None

        try:
            heard = await all_or_none([hear(track) for track in tracks])
        finally:
            # Track by track, whichever answered first (each track's segments stay in order).
            order = {track.stream_index: i for i, track in enumerate(tracks)}
            state.segments.sort(key=lambda s: order.get(s.stream_index, len(order)))
        for track, (_, scored) in zip(tracks, heard, strict=True):
            state.transcript_texts.extend(scored)
            state.item_streams.update({s.item.id: track.stream_index for s in scored})
        results = [result for result, _ in heard]
        model = results[0].model
        outcome = ModalityOutcome(
            Modality.AUDIO,
            State.OK,
            model=model,
            variant=routes["speech"].primary,
            items=round(sum(r.audio_seconds for r in results) * 1000),
            languages=",".join(r.language for r in results),
        )
        if not all(r.model.calibrated for r in results):
            outcome.state = State.UNCALIBRATED
            outcome.reason = f"{model.name} reports uncalibrated output"
        elif not state.transcript_texts and all(r.speech_seconds == 0 for r in results):
            outcome.reason = (
                f"no speech detected on any of the {len(tracks)} audio tracks"
                if several
                else "no speech detected"
            )
        outcome.latency_ms = (time.monotonic() - started) * 1000
        return outcome

    async def _track(
        self,
        track: AudioTrack,
        language: str,
        routes: dict[str, Route],
        state: RunState,
        ctx: RequestContext,
        deadline: float,
    ) -> tuple[SpeechResult, list[ScoredText]]:
        """One audio track: its transcript, and the transcript's scores."""
        pcm = pcm16(track.samples)
        speech_route = routes["speech"]

        async def speak(up: Upstream, until: float) -> SpeechResult:
            return await transcribe(up, pcm, language=language, deadline=until)

        self.shadows.send(state, "speech", speech_route, speak, stream_index=track.stream_index)
        result = await self._call("speech", speech_route.primary, "speech", ctx, speak, deadline)
        # Kept even if scoring it fails: the caller may have asked for the transcript.
        state.segments.extend(
            TrackSegment(track.stream_index, seg, result.language) for seg in result.segments
        )
        items = transcript_items(result.segments, track.stream_index)
        if not items:
            return result, []
        try:
            scored = await self._score_texts(
                items, routes["text"], state, ctx, deadline, stage="transcript_text"
            )
        except ModalityFailed as exc:
            raise ModalityFailed(
                exc.state, f"transcribed, but scoring the transcript failed: {exc.reason}"
            ) from None
        return result, scored

    async def visual(
        self,
        media: SplitMedia,
        routes: dict[str, Route],
        state: RunState,
        ctx: RequestContext,
        deadline: float,
    ) -> ModalityOutcome:
        """The frames scored by vision; the on-screen text it read, scored by text (ocr.py)."""
        started = time.monotonic()
        route = routes["vision"]
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
        state.hashes = result.hashes  # known content: fused after the models (hashes.py)
        if result.ocr is not None:
            await self._on_screen(result.ocr, routes["text"], state, ctx, deadline)
        outcome = ModalityOutcome(
            Modality.VISUAL,
            State.OK,
            model=result.model,
            variant=route.primary,
            items=len(result.frames),
            latency_ms=(time.monotonic() - started) * 1000,
            ocr_frames=ocr.frame_counts(state.on_screen),
        )
        if not result.model.calibrated:
            outcome.state = State.UNCALIBRATED
            outcome.reason = (
                f"{result.model.name} runs without calibrated weights (no pretrained checkpoint); "
                "visual scores are kept out of the decision"
                + ("; on-screen text still counts" if result.ocr is not None else "")
            )
        return outcome

    async def _on_screen(
        self, read: OcrResult, route: Route, state: RunState, ctx: RequestContext, deadline: float
    ) -> None:
        state.on_screen = ocr.read_on_screen(read, state.frame_streams)
        items, streams = ocr.cue_items(state.on_screen)
        if not items:
            return
        try:
            state.on_screen_texts = await self._score_texts(
                items, route, state, ctx, deadline, stage=ocr.STAGE
            )
        except ModalityFailed as exc:
            raise ModalityFailed(
                exc.state, f"read the on-screen text, but scoring it failed: {exc.reason}"
            ) from None
        state.item_streams.update(streams)

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
