"""Media intake: each way media arrives becomes a MediaSource for the request's lifetime, and
what was spooled is gone when the block ends, whether it ends well or not."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway import errors
from gateway.config import GatewayConfig
from gateway.context import RequestContext
from gateway.media.fetch import FetchPolicy
from gateway.media.intake import MediaIntake, MediaSource
from modgate.policy import load_policies
from modgate.v1 import moderation_pb2 as pb

pytestmark = pytest.mark.timeout(30)

POLICY = load_policies()["default"]


def intake(tmp_path: Path, **overrides: object) -> MediaIntake:
    config = GatewayConfig(
        max_unary_bytes=1000,
        max_stream_bytes=3 * 1024 * 1024,
        media_root=tmp_path / "media",
        spool_dir=tmp_path / "spool",
        **overrides,  # type: ignore[arg-type]
    )
    (tmp_path / "media").mkdir(exist_ok=True)
    (tmp_path / "spool").mkdir(exist_ok=True)
    return MediaIntake(config, FetchPolicy.from_config(config))


def context() -> RequestContext:
    return RequestContext(request_id="i-1", deadline=time.monotonic() + 10, policy=POLICY)


async def chunks(*messages: pb.ModerateChunk) -> AsyncIterator[pb.ModerateChunk]:
    for message in messages:
        yield message


def data(payload: bytes) -> pb.ModerateChunk:
    return pb.ModerateChunk(data=payload)


def spooled(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "spool").iterdir())


def test_unary_bytes_and_text_only(tmp_path: Path) -> None:
    media = intake(tmp_path)

    async def main() -> tuple[MediaSource | None, MediaSource | None, RequestContext]:
        ctx = context()
        async with media.unary(b"x" * 1000, "", ctx) as inline:
            pass
        async with media.unary(b"", "", ctx) as none:
            pass
        return inline, none, ctx

    inline, none, ctx = asyncio.run(main())
    assert inline == MediaSource(b"x" * 1000, max_bytes=1000)
    assert none is None
    assert ctx.timings == {}  # nothing was fetched or received

    async def too_large() -> None:
        async with media.unary(b"x" * 1001, "", context()):
            raise AssertionError("an oversized unary request was opened")

    with pytest.raises(errors.MediaTooLarge, match="use ModerateStream"):
        asyncio.run(too_large())


def test_file_uri_is_the_file_itself_under_the_stream_limit(tmp_path: Path) -> None:
    media = intake(tmp_path)
    clip = tmp_path / "media" / "clip.mp4"
    clip.write_bytes(b"m" * 10)

    async def main() -> tuple[MediaSource | None, RequestContext]:
        ctx = context()
        async with media.unary(b"", clip.as_uri(), ctx) as source:
            return source, ctx

    source, ctx = asyncio.run(main())
    assert source == MediaSource(clip, max_bytes=3 * 1024 * 1024)
    assert clip.exists()  # the caller's file is read, never removed
    assert "fetch" in ctx.timings


def test_http_uri_is_refused_while_fetching_is_off(tmp_path: Path) -> None:
    async def main() -> None:
        async with intake(tmp_path).unary(b"", "https://cdn.example.com/a.mp4", context()):
            raise AssertionError("fetched with URI fetching off")

    with pytest.raises(errors.PermissionDenied, match="disabled"):
        asyncio.run(main())


def test_a_stream_is_spooled_for_the_block_and_removed_after(tmp_path: Path) -> None:
    media = intake(tmp_path)
    piece = b"v" * (700 * 1024)  # several pieces, some written before the 1 MiB mark

    async def main() -> tuple[MediaSource | None, bytes, list[Path], RequestContext]:
        ctx = context()
        async with media.streamed(chunks(*(data(piece) for _ in range(4))), ctx) as source:
            assert source is not None and isinstance(source.data, Path)
            return source, source.data.read_bytes(), spooled(tmp_path), ctx

    source, content, during, ctx = asyncio.run(main())
    assert source is not None and source.max_bytes == 3 * 1024 * 1024
    assert content == piece * 4
    assert during == [source.data]
    assert spooled(tmp_path) == []
    assert "receive" in ctx.timings


def test_a_header_only_stream_is_text_only(tmp_path: Path) -> None:
    async def main() -> MediaSource | None:
        async with intake(tmp_path).streamed(chunks(), context()) as source:
            return source

    assert asyncio.run(main()) is None
    assert spooled(tmp_path) == []


@pytest.mark.parametrize(
    ("messages", "error", "match"),
    [
        ((data(b"a" * 1024 * 1024),) * 4, errors.MediaTooLarge, "3145728-byte limit"),
        ((data(b"a"), pb.ModerateChunk(header=pb.ModerateRequest())), errors.BadField, "only the first"),
    ],
    ids=["over the limit", "second header"],
)
def test_a_refused_stream_leaves_no_spool_file(
    tmp_path: Path, messages: tuple[pb.ModerateChunk, ...], error: type[Exception], match: str
) -> None:
    async def main() -> None:
        async with intake(tmp_path).streamed(chunks(*messages), context()):
            raise AssertionError("a refused stream was opened")

    with pytest.raises(error, match=match):
        asyncio.run(main())
    assert spooled(tmp_path) == []


def test_the_spool_is_removed_when_the_pipeline_fails(tmp_path: Path) -> None:
    async def main() -> None:
        async with intake(tmp_path).streamed(chunks(data(b"a" * 10)), context()) as source:
            assert source is not None and spooled(tmp_path) == [source.data]
            raise errors.UndecodableMedia("the pipeline could not decode it")

    with pytest.raises(errors.UndecodableMedia):
        asyncio.run(main())
    assert spooled(tmp_path) == []
