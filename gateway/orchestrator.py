"""The real VerdictPipeline: fan out to the model services, fuse, build the Verdict.

Per request, concurrently:
  frames   -> vision
  audio    -> speech -> transcript -> text (source "transcript"; counts as AUDIO)
  title, description, hashtags, captions, subtitles, metadata -> text
Services a request does not need are not called (text-only requests call only text). Every
call gets the request's deadline minus a small margin for fusion, so a slow or dead service
costs its modality (TIMED_OUT / FAILED, decided by the policy) — never the whole verdict.

Canary routing is deterministic per request id; the verdict's ModelRef.variant says which
variant served. Shadow copies run beside the request and are compared after the verdict is
sent: their result changes metrics and logs, never the decision.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from gateway import metrics
from gateway.errors import DeadlineExceeded, Unavailable
from gateway.fusion import (
    DECISION_NAMES,
    FusionInput,
    ModalityOutcome,
    NoVerdict,
    ScoredText,
    State,
    fuse,
)
from gateway.media.types import SplitMedia
from gateway.pipeline import RequestContext, media_info_proto, timings_proto
from gateway.upstreams.config import SERVICES, OrchestrationSettings, Upstreams
from gateway.upstreams.http import Upstream, UpstreamError
from gateway.upstreams.routing import Route
from gateway.upstreams.services import (
    ServicePool,
    classify,
    encode_jpegs,
    language_hint,
    pcm16,
    score_frames,
    transcribe,
)
from modgate import telemetry
from modgate.policy import Modality, Policy
from modgate.v1 import moderation_pb2 as pb
from modgate.wire import (
    FrameScore,
    ModelInfo,
    PolicyRef,
    SpeechResult,
    SpeechSegment,
    TextItem,
    TextResult,
    VisionResult,
)

log = logging.getLogger("gateway.orchestrator")

SKIP_PB = {
    pb.MODALITY_AUDIO: Modality.AUDIO,
    pb.MODALITY_VISUAL: Modality.VISUAL,
    pb.MODALITY_TEXT: Modality.TEXT,
}
# Text items per call to the text service (its batch limit); larger sets go in parallel calls.
TEXT_BATCH = 128
FRAME_INTERVAL_FALLBACK_MS = 1000
EARLY_AUDIO = "orchestrator.audio"  # RequestContext.early key


class ModalityFailed(Exception):
    def __init__(self, state: State, reason: str) -> None:
        super().__init__(reason)
        self.state = state
        self.reason = reason


def _failure(exc: UpstreamError) -> ModalityFailed:
    return ModalityFailed(State.TIMED_OUT if exc.timed_out else State.FAILED, str(exc))


def check_policy(service: str, variant: str, held: PolicyRef, policy: Policy) -> None:
    """A service scoring against another policy version must not feed this decision."""
    if held.name != policy.name or held.version != policy.version or held.digest != policy.digest:
        metrics.UPSTREAM_ERRORS.labels(service, variant, "policy").inc()
        raise ModalityFailed(
            State.FAILED,
            f"{service} service holds policy {held.name}@{held.version} (digest {held.digest}) but the "
            f"gateway decides with {policy.name}@{policy.version} (digest {policy.digest}); deploy the "
            "same policy file to both (MODGATE_POLICY_DIR) and restart or reload the service",
        )


@dataclass
class _Shadow:
    """What a shadow canary returned, to compare after the verdict is sent."""

    service: str
    task: asyncio.Task[Any]


@dataclass
class _Early:
    """AUDIO started by start_audio() before run(): the request's state and the running task."""

    state: _Run
    task: asyncio.Task[ModalityOutcome]


@dataclass
class _Run:
    """Everything one request collected (the fusion input plus what the verdict reports)."""

    policy: Policy
    outcomes: dict[Modality, ModalityOutcome] = field(default_factory=dict)
    texts: list[ScoredText] = field(default_factory=list)  # TEXT sources
    transcript_texts: list[ScoredText] = field(default_factory=list)  # AUDIO
    frames: list[FrameScore] = field(default_factory=list)
    frame_model: ModelInfo | None = None
    frame_interval_ms: int = FRAME_INTERVAL_FALLBACK_MS
    segments: list[SpeechSegment] = field(default_factory=list)
    shadows: list[_Shadow] = field(default_factory=list)
    text_variant: str = "stable"  # the text variant that served (scores a shadow transcript too)

    def fusion_input(self) -> FusionInput:
        return FusionInput(
            policy=self.policy,
            outcomes=dict(self.outcomes),
            texts=[*self.texts, *self.transcript_texts],
            frames=list(self.frames),
            frame_model=self.frame_model,
            frame_interval_ms=self.frame_interval_ms,
        )


def text_items(request: pb.ModerateRequest, media: SplitMedia | None) -> list[TextItem]:
    """Everything textual about the item except the transcript, one item per timed piece."""
    items: list[TextItem] = []
    if request.title.strip():
        items.append(TextItem(id="title", text=request.title, source="title"))
    if request.description.strip():
        items.append(TextItem(id="description", text=request.description, source="description"))
    tags = [t.strip() for t in request.hashtags if t.strip()]
    if tags:
        text = " ".join(t if t.startswith("#") else f"#{t}" for t in tags)
        items.append(TextItem(id="hashtags", text=text, source="hashtag"))
    for i, cue in enumerate(request.captions):
        if cue.text.strip():
            items.append(
                TextItem(
                    id=f"caption-{i}",
                    text=cue.text,
                    source="caption",
                    start_ms=cue.start_ms,
                    end_ms=cue.end_ms,
                )
            )
    if media is not None:
        for i, sub in enumerate(media.subtitles):
            if sub.text.strip():
                items.append(
                    TextItem(
                        id=f"subtitle-{i}",
                        text=sub.text,
                        source="subtitle",
                        start_ms=sub.start_ms,
                        end_ms=sub.end_ms,
                    )
                )
        for key, value in sorted(media.metadata.items()):
            if value.strip():
                items.append(TextItem(id=f"metadata-{key}", text=value, source="metadata"))
    return items


def transcript_items(segments: list[SpeechSegment]) -> list[TextItem]:
    return [
        TextItem(
            id=f"transcript-{i}",
            text=seg.text.strip(),
            source="transcript",
            start_ms=max(0, round(seg.start_s * 1000)),
            end_ms=max(0, round(seg.end_s * 1000)),
        )
        for i, seg in enumerate(segments)
        if seg.text.strip()
    ]


def frame_interval_ms(media: SplitMedia) -> int:
    if media.info.effective_fps > 0:
        return max(1, round(1000 / media.info.effective_fps))
    stamps = media.frame_timestamps_ms
    if len(stamps) >= 2:
        gaps = sorted(b - a for a, b in itertools.pairwise(stamps) if b > a)
        if gaps:
            return gaps[len(gaps) // 2]
    return FRAME_INTERVAL_FALLBACK_MS


class Orchestrator:
    """VerdictPipeline over the three model services."""

    def __init__(self, upstreams: Upstreams, settings: OrchestrationSettings) -> None:
        self.settings = settings
        self.pools = {s: ServicePool(s, upstreams.for_service(s), settings) for s in SERVICES}
        self._background: set[asyncio.Task[Any]] = set()

    async def aclose(self) -> None:
        for task in list(self._background):
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.gather(*self._background, return_exceptions=True)
        await asyncio.gather(*(p.aclose() for p in self.pools.values()))

    async def drain_shadows(self, timeout_s: float = 30.0) -> None:
        """Wait for the shadow comparisons still running (tests and shutdown)."""
        if self._background:
            await asyncio.wait(list(self._background), timeout=timeout_s)

    # --- the request ----------------------------------------------------------------------

    async def run(
        self, request: pb.ModerateRequest, media: SplitMedia | None, ctx: RequestContext
    ) -> pb.Verdict:
        policy = ctx.policy
        deadline = self._deadline(ctx)
        routes = {s: self.pools[s].route(ctx.request_id) for s in SERVICES}
        # Speech may already be running on the audio part of the split (start_audio).
        early: _Early | None = ctx.early.pop(EARLY_AUDIO, None)
        state = early.state if early else _Run(policy, text_variant=routes["text"].primary)
        skip = {SKIP_PB[m] for m in request.options.skip_modalities if m in SKIP_PB}

        items = text_items(request, media)
        has_audio = media is not None and media.audio is not None and len(media.audio) > 0
        has_frames = media is not None and bool(media.frames)
        jobs: dict[Modality, Callable[[], Coroutine[Any, Any, ModalityOutcome]]] = {}

        def skipped(modality: Modality, why: str) -> None:
            state.outcomes[modality] = ModalityOutcome(modality, State.SKIPPED, reason=why)

        if Modality.AUDIO in skip:
            skipped(Modality.AUDIO, "skipped on request")
        elif not has_audio:
            skipped(Modality.AUDIO, "text-only request" if media is None else "no audio stream")
        elif early is None:
            assert media is not None and media.audio is not None
            audio = media.audio
            jobs[Modality.AUDIO] = lambda: self._audio(request, audio, routes, state, ctx, deadline)
        if Modality.VISUAL in skip:
            skipped(Modality.VISUAL, "skipped on request")
        elif not has_frames:
            skipped(Modality.VISUAL, "text-only request" if media is None else "no video frames")
        else:
            assert media is not None
            state.frame_interval_ms = frame_interval_ms(media)
            frames_media = media
            jobs[Modality.VISUAL] = lambda: self._visual(frames_media, routes["vision"], state, ctx, deadline)
        if Modality.TEXT in skip:
            skipped(Modality.TEXT, "skipped on request")
        elif not items:
            skipped(Modality.TEXT, "no title, description, hashtags, captions, subtitles or metadata")
        else:
            jobs[Modality.TEXT] = lambda: self._text(items, routes["text"], state, ctx, deadline)

        tasks = {m: asyncio.create_task(self._guard(m, job)) for m, job in jobs.items()}
        if early is not None:
            if Modality.AUDIO in state.outcomes:  # skipped after all: nothing waits for it
                early.task.cancel()
            else:
                tasks[Modality.AUDIO] = early.task
        if tasks:
            # Each job honours the deadline itself; this is the safety net for one that does not.
            done, pending = await asyncio.wait(tasks.values(), timeout=max(0.0, deadline - time.monotonic()))
            for task in pending:
                task.cancel()
            for modality, task in tasks.items():
                if task in done:
                    state.outcomes[modality] = task.result()
                else:
                    state.outcomes[modality] = ModalityOutcome(
                        modality, State.TIMED_OUT, reason="no result before the deadline", variant="stable"
                    )
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)

        started = time.monotonic()
        with telemetry.span("fusion") as span:
            try:
                fused = fuse(state.fusion_input())
            except NoVerdict as exc:
                telemetry.record_error(span, str(exc))
                if exc.timed_out:
                    raise DeadlineExceeded(f"no verdict: {exc}") from None
                raise Unavailable(f"no verdict: {exc}; retry later") from None
            span.set_attribute(telemetry.Attr.DECISION, DECISION_NAMES.get(fused.decision, "UNSPECIFIED"))
        ctx.record("fusion", started)

        self._observe(state, ctx, routes)
        if state.shadows:
            self._compare_shadows(state, fused.decision, ctx.request_id)

        verdict = pb.Verdict(
            request_id=ctx.request_id,
            content_id=request.content_id,
            decision=fused.decision,
            risk=fused.risk,
            categories=fused.categories,
            evidence=fused.evidence,
            modalities=fused.modalities,
            policy_name=policy.name,
            policy_version=policy.version,
            trace_id=telemetry.current_trace_id(),
            degraded=fused.degraded,
            reasons=fused.reasons,
            media=media_info_proto(media),
        )
        if request.options.include_transcript:
            verdict.transcript.extend(
                pb.TranscriptSegment(
                    text=s.text.strip(),
                    start_ms=max(0, round(s.start_s * 1000)),
                    end_ms=max(0, round(s.end_s * 1000)),
                    avg_logprob=s.avg_logprob,
                    no_speech_prob=s.no_speech_prob,
                )
                for s in state.segments
            )
        verdict.timings.extend(timings_proto(ctx))
        return verdict

    def _deadline(self, ctx: RequestContext) -> float:
        """When the modalities must be done: the request's deadline minus a margin for fusion
        and the reply. The margin grows with the budget (a tenth of it) up to
        deadline_margin_ms: on a loaded machine 25 ms was too little for long requests
        (verdicts landed after the caller's deadline), while a fixed large margin would starve
        short text-only deadlines."""
        remaining = max(0.0, ctx.deadline - time.monotonic())
        margin = min(self.settings.deadline_margin_ms / 1000.0, max(0.025, remaining * 0.1))
        return ctx.deadline - margin

    def start_audio(
        self, request: pb.ModerateRequest, audio_part: SplitMedia, ctx: RequestContext
    ) -> asyncio.Task[ModalityOutcome] | None:
        """Start AUDIO (speech, then scoring the transcript) on the audio part of a split whose
        frames are still decoding; run() joins it. None when AUDIO will not run."""
        skip = {SKIP_PB[m] for m in request.options.skip_modalities if m in SKIP_PB}
        audio = audio_part.audio
        if Modality.AUDIO in skip or audio is None or len(audio) == 0:
            return None
        deadline = self._deadline(ctx)
        routes = {s: self.pools[s].route(ctx.request_id) for s in SERVICES}
        state = _Run(ctx.policy, text_variant=routes["text"].primary)
        task = asyncio.create_task(
            self._guard(Modality.AUDIO, lambda: self._audio(request, audio, routes, state, ctx, deadline))
        )
        ctx.early[EARLY_AUDIO] = _Early(state, task)
        return task

    async def _guard(
        self, modality: Modality, job: Callable[[], Coroutine[Any, Any, ModalityOutcome]]
    ) -> ModalityOutcome:
        started = time.monotonic()
        try:
            return await job()
        except ModalityFailed as exc:
            return ModalityOutcome(
                modality, exc.state, reason=exc.reason, latency_ms=(time.monotonic() - started) * 1000
            )

    # --- modalities -----------------------------------------------------------------------

    async def _call(
        self,
        service: str,
        variant: str,
        stage: str,
        ctx: RequestContext,
        call: Callable[[Upstream, float], Awaitable[Any]],
        deadline: float,
    ) -> Any:
        up = self.pools[service].upstream(variant)
        started = time.monotonic()
        try:
            return await call(up, deadline)
        except UpstreamError as exc:
            raise _failure(exc) from None
        finally:
            ctx.record(stage, started)

    def _shadow(
        self, state: _Run, service: str, route: Route, call: Callable[[Upstream, float], Awaitable[Any]]
    ) -> None:
        """Send the canary a copy; the request never waits for it."""
        if not route.shadow:
            return
        canary = self.pools[service].canary
        if canary is None:
            return
        deadline = time.monotonic() + self.settings.shadow_timeout_s
        task = asyncio.create_task(_shadow_call(canary, call, deadline))
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        state.shadows.append(_Shadow(service, task))

    async def _audio(
        self,
        request: pb.ModerateRequest,
        audio: Any,
        routes: dict[str, Route],
        state: _Run,
        ctx: RequestContext,
        deadline: float,
    ) -> ModalityOutcome:
        started = time.monotonic()
        pcm = pcm16(audio)
        language = language_hint(request.locale)
        speech_route = routes["speech"]

        async def speak(up: Upstream, until: float) -> SpeechResult:
            return await transcribe(up, pcm, language=language, deadline=until)

        self._shadow(state, "speech", speech_route, speak)
        result: SpeechResult = await self._call(
            "speech", speech_route.primary, "speech", ctx, speak, deadline
        )
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

    async def _visual(
        self, media: SplitMedia, route: Route, state: _Run, ctx: RequestContext, deadline: float
    ) -> ModalityOutcome:
        started = time.monotonic()
        jpegs = await asyncio.to_thread(encode_jpegs, media.frames)
        stamps = media.frame_timestamps_ms
        policy = ctx.policy

        async def look(up: Upstream, until: float) -> VisionResult:
            return await score_frames(
                up, jpegs, stamps, policy=policy.name, policy_version=policy.version, deadline=until
            )

        self._shadow(state, "vision", route, look)
        result: VisionResult = await self._call("vision", route.primary, "vision", ctx, look, deadline)
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

    async def _text(
        self, items: list[TextItem], route: Route, state: _Run, ctx: RequestContext, deadline: float
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
        state: _Run,
        ctx: RequestContext,
        deadline: float,
        *,
        stage: str,
    ) -> list[ScoredText]:
        policy = ctx.policy
        batches = [items[i : i + TEXT_BATCH] for i in range(0, len(items), TEXT_BATCH)]

        async def score(up: Upstream, until: float) -> list[TextResult]:
            results = list(
                await asyncio.gather(
                    *(
                        classify(up, b, policy=policy.name, policy_version=policy.version, deadline=until)
                        for b in batches
                    )
                )
            )
            # Speech and vision refuse a request meant for the other variant (409); the text
            # service has no such check, so the gateway compares what it answered as.
            served = {r.model.variant for r in results}
            if served != {up.variant}:
                raise ModalityFailed(
                    State.FAILED,
                    f"the text {up.variant} upstream ({up.url}) answered as variant "
                    f"{', '.join(sorted(served))}; point the upstreams file at a replica running with "
                    f"MODGATE_VARIANT={up.variant}",
                )
            return results

        self._shadow(state, "text", route, score)
        results: list[TextResult] = await self._call("text", route.primary, stage, ctx, score, deadline)
        return pair_texts(items, results, policy)

    # --- bookkeeping ----------------------------------------------------------------------

    def _observe(self, state: _Run, ctx: RequestContext, routes: dict[str, Route]) -> None:
        for stage, ms in ctx.timings.items():
            metrics.STAGE_SECONDS.labels(stage).observe(ms / 1000.0)
        for modality, outcome in state.outcomes.items():
            metrics.MODALITY_STATES.labels(modality.value, outcome.state.value).inc()
            if outcome.state != State.SKIPPED:
                metrics.MODALITY_SECONDS.labels(modality.value, outcome.state.value).observe(
                    outcome.latency_ms / 1000.0
                )
        used = {
            "speech": state.outcomes.get(Modality.AUDIO),
            "vision": state.outcomes.get(Modality.VISUAL),
            "text": state.outcomes.get(Modality.TEXT),
        }
        for service, outcome in used.items():
            if outcome is None or outcome.state == State.SKIPPED:
                continue
            variant = routes[service].primary
            metrics.SERVED_BY.labels(service, variant).inc()
            if variant == "canary":
                metrics.CANARY_REQUESTS.labels(service).inc()

    def _compare_shadows(self, state: _Run, decision: int, request_id: str) -> None:
        task = asyncio.create_task(self._judge_shadows(state, decision, request_id))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _judge_shadows(self, state: _Run, decision: int, request_id: str) -> None:
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
            try:
                if shadow.service == "speech":
                    alternative = await self._with_shadow_transcript(state, result)
                else:
                    alternative = _substitute(state, shadow.service, result)
            except (ModalityFailed, UpstreamError) as exc:
                log.info("shadow %s for request %s not comparable: %s", shadow.service, request_id, exc)
                continue
            if alternative is None:
                continue
            try:
                shadow_decision = fuse(alternative).decision
            except NoVerdict:
                continue
            agree = shadow_decision == decision
            metrics.SHADOW_REQUESTS.labels(shadow.service, "agree" if agree else "disagree").inc()
            if not agree:
                metrics.SHADOW_DISAGREEMENTS.labels(shadow.service).inc()
                log.warning(
                    "shadow disagreement: request %s, %s canary would decide %s, stable decided %s",
                    request_id,
                    shadow.service,
                    DECISION_NAMES.get(shadow_decision, "?"),
                    DECISION_NAMES.get(decision, "?"),
                )

    async def _with_shadow_transcript(self, state: _Run, result: SpeechResult) -> FusionInput | None:
        """The fusion input had the canary's transcript been used: score it like the real one
        (same text variant as the request), then swap it in."""
        if Modality.AUDIO not in state.outcomes:
            return None
        items = transcript_items(result.segments)
        scored: list[ScoredText] = []
        if items:
            up = self.pools["text"].upstream(state.text_variant)
            deadline = time.monotonic() + self.settings.shadow_timeout_s
            batches = [items[i : i + TEXT_BATCH] for i in range(0, len(items), TEXT_BATCH)]
            results = await asyncio.gather(
                *(
                    classify(
                        up,
                        b,
                        policy=state.policy.name,
                        policy_version=state.policy.version,
                        deadline=deadline,
                    )
                    for b in batches
                )
            )
            scored = pair_texts(items, list(results), state.policy)
        alt = dataclasses.replace(state, outcomes=dict(state.outcomes), transcript_texts=scored)
        alt.outcomes[Modality.AUDIO] = dataclasses.replace(
            state.outcomes[Modality.AUDIO], state=State.OK, variant="canary"
        )
        return alt.fusion_input()


async def _shadow_call(
    canary: Upstream, call: Callable[[Upstream, float], Awaitable[Any]], deadline: float
) -> Any:
    try:
        return await call(canary, deadline)
    except UpstreamError as exc:
        raise _failure(exc) from None


def pair_texts(items: list[TextItem], results: list[TextResult], policy: Policy) -> list[ScoredText]:
    by_id = {item.id: item for item in items}
    scored: list[ScoredText] = []
    for result in results:
        check_policy("text", result.model.variant, result.policy, policy)
        for item_result in result.items:
            item = by_id.get(item_result.id)
            if item is not None:
                scored.append(ScoredText(item=item, result=item_result, model=result.model))
    missing = len(by_id) - len(scored)
    if missing > 0:
        raise ModalityFailed(State.FAILED, f"text service answered for {len(scored)} of {len(by_id)} items")
    return scored


def _substitute(state: _Run, service: str, result: Any) -> FusionInput | None:
    """The fusion input as it would be had the shadow canary's result been used."""
    alt = dataclasses.replace(state, outcomes=dict(state.outcomes))
    if service == "vision" and isinstance(result, VisionResult):
        if Modality.VISUAL not in alt.outcomes:
            return None
        alt.frames = list(result.frames)
        alt.frame_model = result.model
        outcome = dataclasses.replace(alt.outcomes[Modality.VISUAL], state=State.OK, variant="canary")
        if not result.model.calibrated:
            outcome.state = State.UNCALIBRATED
        alt.outcomes[Modality.VISUAL] = outcome
    elif service == "text" and isinstance(result, list):
        # One text shadow per text call: the TEXT sources or the transcript, matched by item ids.
        scored_ids = {s.item.id for s in state.texts}
        items = {s.item.id: s.item for s in (*state.texts, *state.transcript_texts)}
        pairs = [
            ScoredText(item=items[r.id], result=r, model=res.model)
            for res in result
            for r in res.items
            if r.id in items
        ]
        if not pairs:
            return None
        if all(p.item.id in scored_ids for p in pairs):
            alt.texts = pairs
            modality = Modality.TEXT
        else:
            alt.transcript_texts = pairs
            modality = Modality.AUDIO
        if modality in alt.outcomes:
            alt.outcomes[modality] = dataclasses.replace(alt.outcomes[modality], state=State.OK)
    else:
        return None
    return alt.fusion_input()


def build_pipeline(config: Any, policies: dict[str, Policy]) -> Orchestrator:
    """Factory for MODGATE_GATEWAY_PIPELINE (the default): config is a GatewayConfig."""
    settings: OrchestrationSettings = getattr(config, "orchestration", None) or OrchestrationSettings()
    upstreams = settings.load_upstreams()
    listen_host = str(getattr(config, "listen", "127.0.0.1:0")).rsplit(":", 1)[0].strip("[]") or "127.0.0.1"
    start_metrics(settings.metrics_port, settings.metrics_host or listen_host)
    for service in SERVICES:
        cfg = upstreams.for_service(service)
        canary = ""
        if cfg.canary:
            mode = " (shadow)" if cfg.canary.shadow else ""
            canary = f", canary {cfg.canary.url} weight {cfg.canary.weight}{mode}"
        log.info("upstream %s: stable %s%s", service, cfg.stable.url, canary)
    return Orchestrator(upstreams, settings)


_metrics_started = False


def start_metrics(port: int, host: str) -> None:
    """Serve /metrics once per process (port 0: off). A busy port fails the start, loudly."""
    global _metrics_started
    if _metrics_started or port == 0:
        return
    try:
        metrics.serve(port, host)
    except OSError as exc:
        raise OSError(
            f"cannot serve metrics on {host}:{port}: {exc}; set MODGATE_GATEWAY_METRICS_PORT to a free "
            "port (0 disables metrics)"
        ) from None
    _metrics_started = True
