"""Audio first: the split stage hands the pipeline the audio part while the frames still decode."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import grpc
import numpy as np
import pytest

from gateway.app import build_gateway
from gateway.config import GatewayConfig
from gateway.errors import GatewayError
from gateway.job import ModerationJob
from gateway.media.limits import MediaLimits, SplitOptions
from gateway.media.split_stage import MediaSplitter
from gateway.media.splitter import split_media
from gateway.media.types import SplitMedia
from gateway.media.worker import SplitWorkers
from gateway.pipeline import VerdictPipeline, media_info_proto
from modgate.tools.mediagen import Cue, Generated, MediaSpec, Speech, truncated
from modgate.v1 import moderation_pb2 as pb
from modgate.v1 import moderation_pb2_grpc as pb_grpc

pytestmark = pytest.mark.timeout(120)

Make = Callable[[MediaSpec], Generated]
CLIP = MediaSpec(
    duration_s=6.0,
    speech=(Speech(0.5, "I know where you live"),),
    subtitles=(Cue(500, 1700, "Hello world"), Cue(2000, 3250, "Second line")),
    metadata=(("title", "A clip title"),),
    gop=25,
)


def assert_same_media(merged: SplitMedia, plain: SplitMedia) -> None:
    assert merged.info == plain.info
    assert merged.audio is not None and plain.audio is not None
    assert np.array_equal(merged.audio, plain.audio)
    assert merged.frame_timestamps_ms == plain.frame_timestamps_ms
    assert all(np.array_equal(a.image, b.image) for a, b in zip(merged.frames, plain.frames, strict=True))
    assert merged.subtitles == plain.subtitles
    assert merged.metadata == plain.metadata


@pytest.mark.parametrize("workers", [0, 2])
def test_the_two_parts_merge_into_what_one_split_gives(make_media: Make, workers: int) -> None:
    clip = make_media(CLIP)
    options = SplitOptions(frame_sample_fps=2.0, keyframe_snap=0.5)
    handed: list[tuple[float, SplitMedia]] = []

    async def scenario() -> tuple[SplitMedia, float]:
        pool = SplitWorkers(workers)
        await pool.start()
        try:
            merged = await pool.split_audio_first(
                clip.path,
                options,
                MediaLimits(),
                on_audio=lambda part: handed.append((time.monotonic(), part)),
            )
            return merged, time.monotonic()
        finally:
            await pool.close()

    merged, finished = asyncio.run(scenario())
    assert_same_media(merged, split_media(clip.path, options, MediaLimits()))
    [(at, part)] = handed
    assert at <= finished
    # The audio part carries everything but the frames.
    assert part.audio is not None and np.array_equal(part.audio, merged.audio)
    assert part.frames == [] and part.subtitles == merged.subtitles and part.metadata == merged.metadata
    assert "audio_decode" in merged.timings_ms and "decode" in merged.timings_ms


def test_a_failing_part_fails_the_split_and_leaves_nothing_running(make_media: Make, tmp_path: Any) -> None:
    broken = tmp_path / "truncated.mp4"
    broken.write_bytes(truncated(make_media(CLIP).data, 0.6))
    handed: list[SplitMedia] = []

    with pytest.raises(GatewayError) as plain:
        split_media(broken, SplitOptions(), MediaLimits())

    async def scenario() -> int:
        pool = SplitWorkers(0)
        with pytest.raises(type(plain.value)):  # the same refusal as one split gives
            await pool.split_audio_first(broken, SplitOptions(), MediaLimits(), on_audio=handed.append)
        await asyncio.sleep(0.05)
        return len(asyncio.all_tasks()) - 1  # all but this one

    assert asyncio.run(scenario()) == 0


class AudioFirst:
    """A pipeline that asks its split stage for the audio part first, records the order in
    which it got the parts, and decides ALLOW with what its early work returned."""

    def __init__(self, config: GatewayConfig) -> None:
        self.splitter = MediaSplitter(SplitWorkers(config.split_workers), config)
        self.events: list[tuple[str, SplitMedia | None]] = []

    async def run(self, job: ModerationJob) -> pb.Verdict:
        early: list[asyncio.Task[str]] = []

        def start_audio(audio_part: SplitMedia) -> None:
            self.events.append(("start_audio", audio_part))

            async def speech() -> str:
                await asyncio.sleep(0)
                return "transcript"

            early.append(asyncio.create_task(speech()))

        media = await self.splitter.split(job, on_audio=start_audio) if job.media is not None else None
        self.events.append(("run", media))
        reasons = [await task for task in early]
        ctx = job.ctx
        timings = [pb.StageTiming(stage=k, duration_ms=round(v)) for k, v in ctx.timings.items()]
        return pb.Verdict(
            request_id=ctx.request_id,
            decision=pb.DECISION_ALLOW,
            reasons=reasons,
            timings=timings,
            media=media_info_proto(media),
        )


def gateway_config(**config: object) -> GatewayConfig:
    return GatewayConfig(listen="127.0.0.1:0", split_workers=0, decode_threads=1, **config)  # type: ignore[arg-type]


def moderate(pipeline: object, data: bytes, *, skip: tuple[int, ...] = (), **config: object) -> pb.Verdict:
    async def scenario() -> pb.Verdict:
        gateway = build_gateway(gateway_config(**config), pipeline)  # type: ignore[arg-type]
        await gateway.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{gateway.port}") as channel:
                request = pb.ModerateRequest(media=data, options=pb.ModerateOptions(skip_modalities=skip))
                return await pb_grpc.ModerationStub(channel).Moderate(request, timeout=30)
        finally:
            await gateway.stop(0)

    return asyncio.run(scenario())


def test_the_split_stage_hands_the_audio_part_over_before_the_whole_media(make_media: Make) -> None:
    clip = make_media(CLIP)
    pipeline = AudioFirst(gateway_config())
    assert isinstance(pipeline, VerdictPipeline)
    verdict = moderate(pipeline, clip.data)

    assert [name for name, _ in pipeline.events] == ["start_audio", "run"]
    (_, part), (_, media) = pipeline.events
    assert part is not None and part.audio is not None and part.frames == []
    assert media is not None and len(media.frames) == 6 and media.audio is not None
    assert list(verdict.reasons) == ["transcript"]  # the pipeline joined its early work
    timings = {t.stage: t.duration_ms for t in verdict.timings}
    assert timings["split_audio"] <= timings["split"]
    assert verdict.media.has_audio and verdict.media.subtitle_streams == 1


@pytest.mark.parametrize(
    ("config", "skip"),
    [({"split_audio_first": False}, ()), ({}, (pb.MODALITY_AUDIO,)), ({}, (pb.MODALITY_VISUAL,))],
)
def test_one_split_when_audio_first_is_off_or_a_part_is_skipped(
    make_media: Make, config: dict[str, object], skip: tuple[int, ...]
) -> None:
    pipeline = AudioFirst(gateway_config(**config))
    verdict = moderate(pipeline, make_media(CLIP).data, skip=skip, **config)
    assert [name for name, _ in pipeline.events] == ["run"]
    assert "split_audio" not in {t.stage for t in verdict.timings}
