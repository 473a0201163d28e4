"""One request's plan and fan-out: which modalities run, when each starts, waiting for them.

A modality runs when the request does not skip it and its input exists (audio samples,
sampled frames, text items); otherwise it is SKIPPED with the reason the verdict reports, and
services a request does not need are not called (text-only requests call only text). AUDIO
starts as soon as the audio part of the split is ready (on_audio_part, called by the split
stage while the frames still decode); the rest start once the split is done. All are awaited
until the modalities' deadline, after which a missing result is TIMED_OUT. AUDIO covers every
audio track the split decoded, VISUAL the frames of every video stream it sampled.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable, Coroutine
from typing import Any

from gateway.fusion import ModalityOutcome, State
from gateway.job import ModerationJob
from gateway.media.types import SplitMedia
from gateway.orchestrator.calls import ServiceCalls
from gateway.orchestrator.items import subtitle_streams, text_items
from gateway.orchestrator.state import FRAME_INTERVAL_FALLBACK_MS, RunState
from gateway.upstreams.routing import Route
from modgate.policy import Modality

Job = Callable[[], Coroutine[Any, Any, ModalityOutcome]]
NO_TEXT = "no title, description, hashtags, captions, subtitles or metadata"


def frame_interval_ms(media: SplitMedia) -> int:
    if media.info.effective_fps > 0:
        return max(1, round(1000 / media.info.effective_fps))
    stamps = media.frame_timestamps_ms
    if len(stamps) >= 2:
        gaps = sorted(b - a for a, b in itertools.pairwise(stamps) if b > a)
        if gaps:
            return gaps[len(gaps) // 2]
    return FRAME_INTERVAL_FALLBACK_MS


def _has_audio(media: SplitMedia | None) -> bool:
    return media is not None and any(len(track.samples) > 0 for track in media.audio_tracks)


class FanOut:
    def __init__(self, calls: ServiceCalls, job: ModerationJob, routes: dict[str, Route]) -> None:
        self.calls = calls
        self.job = job
        self.routes = routes
        self.state = RunState(job.ctx.policy, text_variant=routes["text"].primary)
        self.tasks: dict[Modality, asyncio.Task[ModalityOutcome]] = {}
        self.deadline = calls.deadline(job.ctx)

    def on_audio_part(self, audio_part: SplitMedia) -> None:
        """Start AUDIO on the audio part of a split whose frames are still decoding."""
        if Modality.AUDIO not in self.job.request.skip and _has_audio(audio_part):
            self._run_audio(audio_part, self.calls.deadline(self.job.ctx))

    def start(self, media: SplitMedia | None) -> None:
        """Start (or skip) every modality not started yet, once the media is split (None: no media)."""
        self.deadline = self.calls.deadline(self.job.ctx)
        skip = self.job.request.skip
        absent = "text-only request" if media is None else None
        if Modality.AUDIO in self.tasks:
            pass  # running on the audio part since the split handed it over
        elif Modality.AUDIO in skip:
            self._skip(Modality.AUDIO, "skipped on request")
        elif media is None or not _has_audio(media):
            self._skip(Modality.AUDIO, absent or "no audio stream")
        else:
            self._run_audio(media, self.deadline)
        if Modality.VISUAL in skip:
            self._skip(Modality.VISUAL, "skipped on request")
        elif media is None or not media.frames:
            self._skip(Modality.VISUAL, absent or "no video frames")
        else:
            self._start_visual(media)
        items = text_items(self.job.request, media)
        if media is not None:
            self.state.item_streams.update(subtitle_streams(media))
        if Modality.TEXT in skip:
            self._skip(Modality.TEXT, "skipped on request")
        elif not items:
            self._skip(Modality.TEXT, NO_TEXT)
        else:
            route, state, ctx, until = self.routes["text"], self.state, self.job.ctx, self.deadline
            self._run(Modality.TEXT, lambda: self.calls.text(items, route, state, ctx, until))

    async def wait(self) -> None:
        """Every started modality's outcome, or TIMED_OUT for one still running at the deadline."""
        if not self.tasks:
            return
        # Each job honours the deadline itself; this is the safety net for one that does not.
        done, pending = await asyncio.wait(
            self.tasks.values(), timeout=max(0.0, self.deadline - time.monotonic())
        )
        for task in pending:
            task.cancel()
        for modality, task in self.tasks.items():
            if task in done:
                self.state.outcomes[modality] = task.result()
            else:
                self.state.outcomes[modality] = ModalityOutcome(
                    modality, State.TIMED_OUT, reason="no result before the deadline", variant="stable"
                )
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)

    def cancel(self) -> None:
        """Stop whatever still runs (the request failed, was cancelled or has its verdict)."""
        for task in self.tasks.values():
            task.cancel()

    def _skip(self, modality: Modality, why: str) -> None:
        self.state.outcomes[modality] = ModalityOutcome(modality, State.SKIPPED, reason=why)

    def _run(self, modality: Modality, job: Job) -> None:
        self.tasks[modality] = asyncio.create_task(self.calls.guard(modality, job))

    def _run_audio(self, media: SplitMedia, deadline: float) -> None:
        tracks = [track for track in media.audio_tracks if len(track.samples) > 0]
        locale, routes, state, ctx = self.job.request.locale, self.routes, self.state, self.job.ctx
        self._run(Modality.AUDIO, lambda: self.calls.audio(tracks, locale, routes, state, ctx, deadline))

    def _start_visual(self, media: SplitMedia) -> None:
        self.state.frame_interval_ms = frame_interval_ms(media)
        self.state.frame_streams = [frame.stream_index for frame in media.frames]
        routes, state, ctx, until = self.routes, self.state, self.job.ctx, self.deadline
        self._run(Modality.VISUAL, lambda: self.calls.visual(media, routes, state, ctx, until))
