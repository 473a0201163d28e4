"""SplitWorkers: splits in worker processes give the in-process result; errors keep their type."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import grpc
import numpy as np
import pytest

from gateway import errors
from gateway.media.limits import MediaLimits, SplitOptions
from gateway.media.splitter import split_media
from gateway.media.types import SplitMedia
from gateway.media.worker import SplitWorkers
from modgate.tools.mediagen import Cue, Generated, MediaSpec, random_bytes

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize("workers", [1, 0])
def test_worker_split_equals_in_process_split(
    make_media: Callable[[MediaSpec], Generated], workers: int
) -> None:
    clip = make_media(MediaSpec(subtitles=(Cue(100, 900, "cue"),)))

    async def run() -> tuple[SplitMedia, errors.GatewayError]:
        pool = SplitWorkers(workers)
        await pool.start()
        try:
            media = await pool.split(clip.data, SplitOptions(), MediaLimits())
            with pytest.raises(errors.GatewayError) as caught:
                await pool.split(random_bytes(), SplitOptions(), MediaLimits())
            return media, caught.value
        finally:
            await pool.close()

    media, error = asyncio.run(run())
    local = split_media(clip.path, SplitOptions(), MediaLimits())
    assert media.info == local.info and media.subtitles == local.subtitles
    assert media.audio is not None and local.audio is not None
    assert np.array_equal(media.audio, local.audio)
    assert [f.timestamp_ms for f in media.frames] == [f.timestamp_ms for f in local.frames]
    assert all(np.array_equal(a.image, b.image) for a, b in zip(media.frames, local.frames, strict=True))
    assert type(error) is errors.UnsupportedMedia
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
