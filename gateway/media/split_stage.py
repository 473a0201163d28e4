"""The split stage of a request: its media source -> SplitMedia, in the split workers.

The sampling is the request's (frame rate, frame cap, skipped modalities) capped by the
gateway config; the byte limit is the one the media was received under. A pipeline that can
start work on the audio passes on_audio: when MODGATE_GATEWAY_SPLIT_AUDIO_FIRST is on and the
request wants both audio and frames, the audio part (audio, subtitles, metadata; no frames)
is split beside the video and handed to on_audio as soon as it is ready, so speech, the
longest stage of a video, starts while the frames still decode. Either way the result is the
whole media, and the stage records the "split" span and the split / split_audio timings.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Callable
from typing import Protocol

from gateway.config import GatewayConfig
from gateway.job import ModerationJob
from gateway.media.types import SplitMedia
from gateway.media.worker import SplitWorkers
from modgate import telemetry
from modgate.policy import Modality

AudioReady = Callable[[SplitMedia], None]


class Splitter(Protocol):
    async def split(self, job: ModerationJob, *, on_audio: AudioReady | None = None) -> SplitMedia: ...


class MediaSplitter:
    def __init__(self, workers: SplitWorkers, config: GatewayConfig) -> None:
        self.workers = workers
        self.config = config

    async def split(self, job: ModerationJob, *, on_audio: AudioReady | None = None) -> SplitMedia:
        if job.media is None:
            raise ValueError("MediaSplitter.split needs a job with media (job.media is None)")
        ctx, request = job.ctx, job.request
        options = self.config.split_options(
            fps=request.frame_sample_fps,
            max_frames=request.max_frames,
            audio=Modality.AUDIO not in request.skip,
            video=Modality.VISUAL not in request.skip,
            ocr=ctx.policy.ocr.enabled,
        )
        limits = self.config.media_limits(job.media.max_bytes)
        source = job.media.data
        if isinstance(source, memoryview):  # a view cannot be pickled to a split worker
            source = source.tobytes()
        audio_first = (
            on_audio is not None and self.config.split_audio_first and options.audio and options.video
        )
        started = time.monotonic()
        # on_audio's work runs in the request's context, not inside the split span.
        request_context = contextvars.copy_context()

        def audio_ready(part: SplitMedia) -> None:
            ctx.record("split_audio", started)
            assert on_audio is not None
            request_context.run(on_audio, part)

        with telemetry.span("split") as span:
            if audio_first:
                media = await self.workers.split_audio_first(
                    source, options, limits, on_audio=audio_ready, deadline_s=ctx.remaining_s()
                )
            else:
                media = await self.workers.split(source, options, limits, deadline_s=ctx.remaining_s())
            info = media.info
            span.set_attribute(telemetry.Attr.STREAM_COUNT, len(info.streams))
            span.set_attribute(telemetry.Attr.FRAME_COUNT, len(media.frames))
            span.set_attribute("modgate.audio_tracks", len(media.audio_tracks))
            span.set_attribute("modgate.audio_seconds", round(media.audio_duration_s, 3))
            not_moderated = info.not_moderated()
            if not_moderated:
                span.set_attribute("modgate.streams_not_moderated", [r.index for r in not_moderated])
        ctx.record("split", started)
        return media
