"""The orchestrator splits its job's media itself: speech starts on the audio part while the
frames still decode, and what it started is cancelled when the rest of the split fails.

The split is real (MediaSplitter over SplitWorkers, on a generated clip); the model services
are small aiohttp servers speaking their wire contract (see test_orchestrator.py).
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from aiohttp import web

from gateway.app import service_pools
from gateway.config import GatewayConfig
from gateway.context import RequestContext
from gateway.errors import UndecodableMedia
from gateway.job import ModerationJob, ModerationRequest
from gateway.media.intake import MediaSource
from gateway.media.limits import MediaLimits, SplitOptions
from gateway.media.split_stage import AudioReady, MediaSplitter
from gateway.media.types import AudioTrack, MediaInfo, SplitMedia
from gateway.media.worker import SplitWorkers
from gateway.orchestrator import Orchestrator
from gateway.upstreams.config import OrchestrationSettings, parse_upstreams
from modgate.tools.mediagen import Cue, Generated, MediaSpec, Speech
from modgate.v1 import moderation_pb2 as pb
from modgate.wire import (
    FrameScore,
    ModelInfo,
    SpeechResult,
    SpeechSegment,
    VisionResult,
)
from tests.gateway.test_orchestrator import POLICY, Handler, ref, serve, status, text_handler

pytestmark = pytest.mark.timeout(60)

CLIP = MediaSpec(
    duration_s=6.0,
    speech=(Speech(0.5, "I know where you live"),),
    subtitles=(Cue(500, 1700, "Hello world"),),
    gop=25,
)


class VideoWaitsForSpeech(SplitWorkers):
    """Split workers whose video part ends only once speech has been called (or 5 s passed):
    with audio first, speech is called while the video part is still being split."""

    def __init__(self, speech_called: asyncio.Event) -> None:
        super().__init__(0)
        self.speech_called = speech_called
        self.speech_before_frames: bool | None = None

    async def split(
        self,
        source: bytes | Path,
        options: SplitOptions,
        limits: MediaLimits,
        *,
        deadline_s: float | None = None,
    ) -> SplitMedia:
        media = await super().split(source, options, limits, deadline_s=deadline_s)
        if not options.audio:  # the video part
            try:
                await asyncio.wait_for(self.speech_called.wait(), timeout=5.0)
                self.speech_before_frames = True
            except TimeoutError:
                self.speech_before_frames = False
        return media


def speech_handler(called: asyncio.Event) -> Handler:
    async def handle(request: web.Request) -> web.Response:
        called.set()
        await request.post()
        result = SpeechResult(
            segments=[
                SpeechSegment(
                    text="I know where you live",
                    start_s=0.5,
                    end_s=1.8,
                    avg_logprob=-0.2,
                    no_speech_prob=0.01,
                )
            ],
            language="en",
            audio_seconds=6.0,
            speech_seconds=1.3,
            model=ModelInfo(name="whisper-tiny.en", version="x"),
        )
        return web.json_response(text=result.model_dump_json())

    return handle


async def vision_handler(request: web.Request) -> web.Response:
    form = await request.post()
    count = len(form.getall("frames"))
    result = VisionResult(
        frames=[
            FrameScore(index=i, timestamp_ms=i * 500, scores={"violence": 0.01}, best_prompts={})
            for i in range(count)
        ],
        duplicates_skipped=0,
        batch_sizes=[count],
        model=ModelInfo(name="ViT-B-32", version="x"),
        policy=ref(POLICY),
    )
    return web.json_response(text=result.model_dump_json())


def moderation_job(source: MediaSource | None, request: pb.ModerateRequest | None = None) -> ModerationJob:
    ctx = RequestContext(request_id="af-1", deadline=time.monotonic() + 20, policy=POLICY)
    return ModerationJob(
        ModerationRequest.from_proto(request or pb.ModerateRequest(title="a clip")), source, ctx
    )


def orchestrator(urls: dict[str, str], splitter: object, **settings: object) -> Orchestrator:
    upstreams = parse_upstreams({s: {"stable": {"url": u}} for s, u in urls.items()})
    orchestration = OrchestrationSettings(metrics_port=0, retry_backoff_base_ms=1, **settings)  # type: ignore[arg-type]
    return Orchestrator(service_pools(upstreams, orchestration), splitter, orchestration)  # type: ignore[arg-type]


def test_speech_starts_on_the_audio_part_before_the_frames_are_split(
    make_media: Callable[[MediaSpec], Generated],
) -> None:
    clip = make_media(CLIP)

    async def main() -> tuple[pb.Verdict, VideoWaitsForSpeech, ModerationJob]:
        called = asyncio.Event()
        runners = []
        urls = {}
        for service, path, handler in (
            ("speech", "/transcribe", speech_handler(called)),
            ("vision", "/score", vision_handler),
            ("text", "/moderate", text_handler()),
        ):
            runner, urls[service] = await serve({path: handler})
            runners.append(runner)
        workers = VideoWaitsForSpeech(called)
        config = GatewayConfig(split_workers=0, decode_threads=1)
        orch = orchestrator(urls, MediaSplitter(workers, config))
        job = moderation_job(MediaSource(clip.path, max_bytes=64 * 1024 * 1024))
        try:
            return await orch.run(job), workers, job
        finally:
            await orch.aclose()
            for runner in runners:
                await runner.cleanup()

    verdict, workers, job = asyncio.run(main())
    assert workers.speech_before_frames is True
    assert status(verdict, pb.MODALITY_AUDIO).state == pb.MODALITY_STATE_OK
    assert status(verdict, pb.MODALITY_VISUAL).state == pb.MODALITY_STATE_OK
    assert status(verdict, pb.MODALITY_VISUAL).items == 6
    text = status(verdict, pb.MODALITY_TEXT)
    assert text.state == pb.MODALITY_STATE_OK and text.items == 2  # the title and the subtitle cue
    timings = job.ctx.timings
    assert timings["split_audio"] <= timings["split"]
    assert {"speech", "transcript_text", "vision", "text", "fusion"} <= set(timings)
    assert verdict.media.has_audio and verdict.media.frames_sampled == 6


class FailsAfterTheAudioPart:
    """A split whose audio part is handed over and whose video part then fails."""

    async def split(self, job: ModerationJob, *, on_audio: AudioReady | None = None) -> SplitMedia:
        assert on_audio is not None
        info = MediaInfo(duration_ms=1000, container="mp4", has_audio=True)
        on_audio(SplitMedia(info=info, audio_tracks=(AudioTrack(1, np.zeros(16000, dtype=np.float32)),)))
        await asyncio.sleep(0.05)  # speech is on its way
        raise UndecodableMedia("stream 0 (video h264): the video stream broke off")


def test_a_split_failing_after_the_audio_part_cancels_the_speech_it_started() -> None:
    async def main() -> set[asyncio.Task[object]]:
        # Accepts connections and never answers: speech would wait for its whole deadline.
        with socket.socket() as silent:
            silent.bind(("127.0.0.1", 0))
            silent.listen()
            url = f"http://127.0.0.1:{silent.getsockname()[1]}"
            orch = orchestrator({"speech": url}, FailsAfterTheAudioPart())
            try:
                with pytest.raises(UndecodableMedia):
                    await orch.run(moderation_job(MediaSource(b"container", max_bytes=1024)))
                await asyncio.sleep(0.05)
                return asyncio.all_tasks() - {asyncio.current_task()}  # type: ignore[operator]
            finally:
                await orch.aclose()

    assert asyncio.run(main()) == set()
