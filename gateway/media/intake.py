"""Media intake: where a request's media comes from, as a source the splitter can read.

A request's media arrives as inline bytes (Moderate), as chunks streamed after the header
(ModerateStream, spooled to disk while they arrive) or as a media_uri: file:// under the media
root (gateway/media/source.py) or http(s) when fetching is enabled (gateway/media/fetch.py,
spooled to disk). Each way is an async context manager that yields a MediaSource, or None for
a text-only request, and removes what it spooled when the block ends: the file lives as long
as the request, so the pipeline splits it when and how it chooses.

Byte limits are checked here, while receiving (a stream over the limit is refused before the
rest is read); the splitter checks the source's limit again as it reads.

When the request's policy names hash banks, the MD5 + SHA-256 of the media bytes
(MediaSource.digests, for the exact-hash lookup before splitting) are computed here too: chunk
by chunk as a stream or a fetch arrives, in the same thread hop as the spool write; over the
inline bytes of a unary request; over the file of a file:// URI (the one read the gateway
makes of it before the splitter's).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from gateway.config import GatewayConfig
from gateway.context import RequestContext
from gateway.errors import BadField, MediaTooLarge
from gateway.media.fetch import FetchPolicy, fetched_media
from gateway.media.source import resolve_file_uri, uri_scheme
from modgate.banks.digests import ContentDigests
from modgate.v1 import moderation_pb2 as pb

# Streamed data is written in pieces of at least this much: many small messages stay cheap.
_SPOOL_WRITE_BYTES = 1024 * 1024


@dataclass(frozen=True)
class MediaSource:
    """Container bytes, or a file holding them (spooled upload, fetched URI, file under the root)."""

    # memoryview: the inline media of a Moderate request, a view of the received message.
    data: bytes | memoryview | Path
    # The byte limit the media was received under (MediaLimits.max_bytes of its split).
    max_bytes: int
    # MD5 + SHA-256 of the bytes (None: the request's policy names no hash bank).
    digests: ContentDigests | None = None


def wants_digests(ctx: RequestContext) -> bool:
    """Digests are computed only for a policy that has banks to look them up in."""
    return bool(ctx.policy.banks)


def _spool_write(spool: BinaryIO, data: bytes, digests: ContentDigests | None) -> None:
    if digests is not None:
        digests.update(data)
    spool.write(data)


class MediaIntake:
    def __init__(self, config: GatewayConfig, fetch_policy: FetchPolicy) -> None:
        self.config = config
        self.fetch_policy = fetch_policy

    @contextlib.asynccontextmanager
    async def unary(
        self, media: bytes | memoryview, media_uri: str, ctx: RequestContext
    ) -> AsyncIterator[MediaSource | None]:
        """The media of a Moderate request: its inline bytes (the media field, read once by the
        servicer) or its media_uri (None: text only)."""
        config = self.config
        if media:
            if len(media) > config.max_unary_bytes:
                raise MediaTooLarge(
                    f"media is {len(media)} bytes, over the unary limit of {config.max_unary_bytes}; "
                    "use ModerateStream for larger videos",
                    limit="bytes",
                    value=len(media),
                    maximum=config.max_unary_bytes,
                )
            digests = None
            if wants_digests(ctx):
                started = time.monotonic()
                digests = await asyncio.to_thread(ContentDigests.of_bytes, media)
                ctx.record("digest", started)
            yield MediaSource(media, config.max_unary_bytes, digests)
        elif media_uri:
            async with self._uri(media_uri, ctx) as source:
                yield source
        else:
            yield None

    @contextlib.asynccontextmanager
    async def _uri(self, uri: str, ctx: RequestContext) -> AsyncIterator[MediaSource]:
        started = time.monotonic()
        if uri_scheme(uri) == "file":
            path = resolve_file_uri(uri, self.config.media_root, self.config.max_stream_bytes)
            ctx.record("fetch", started)
            digests = None
            if wants_digests(ctx):
                started = time.monotonic()
                digests = await asyncio.to_thread(ContentDigests.of_file, path)
                ctx.record("digest", started)
            yield MediaSource(path, self.config.max_stream_bytes, digests)
            return
        # Spooled to disk, checked hop by hop (gateway/media/fetch.py); deleted when the block ends.
        digests = ContentDigests() if wants_digests(ctx) else None
        async with fetched_media(
            uri,
            self.fetch_policy,
            spool_dir=self.config.spool_dir,
            deadline_s=ctx.remaining_s(),
            digests=digests,
        ) as fetched:
            ctx.record("fetch", started)
            yield MediaSource(fetched, self.fetch_policy.max_bytes, digests)

    @contextlib.asynccontextmanager
    async def streamed(
        self, chunks: AsyncIterator[pb.ModerateChunk], ctx: RequestContext
    ) -> AsyncIterator[MediaSource | None]:
        """The data messages after a ModerateStream header, spooled to a file (None: header only)."""
        config = self.config
        started = time.monotonic()
        spool_dir = str(config.spool_dir) if config.spool_dir else None
        fd, name = tempfile.mkstemp(prefix="modgate-upload-", suffix=".media", dir=spool_dir)
        path = Path(name)
        digests = ContentDigests() if wants_digests(ctx) else None
        try:
            with os.fdopen(fd, "wb") as spool:
                total = await self._spool(chunks, spool, digests)
            ctx.record("receive", started)
            # The worker reads the spooled file itself: no 256 MiB pickles between processes.
            yield MediaSource(path, config.max_stream_bytes, digests) if total else None
        finally:
            await asyncio.to_thread(path.unlink, missing_ok=True)

    async def _spool(
        self, chunks: AsyncIterator[pb.ModerateChunk], spool: BinaryIO, digests: ContentDigests | None
    ) -> int:
        limit = self.config.max_stream_bytes
        total = 0
        pending = bytearray()
        # A piece is written (and digested) in a thread while the next ones arrive; one piece at
        # a time, so the file and the digests see the bytes in order.
        writing: asyncio.Future[None] | None = None
        try:
            async for chunk in chunks:
                piece = chunk.data  # read once: each read of a protobuf bytes field is a copy
                total += len(piece)
                _check_chunk(chunk, total, limit)
                if pending or len(piece) < _SPOOL_WRITE_BYTES:  # a large piece goes as it is
                    pending += piece
                    if len(pending) < _SPOOL_WRITE_BYTES:
                        continue
                    piece = bytes(pending)
                    pending.clear()
                if writing is not None:
                    await writing
                writing = asyncio.ensure_future(asyncio.to_thread(_spool_write, spool, piece, digests))
            if writing is not None:
                await writing
                writing = None
            await asyncio.to_thread(_spool_write, spool, bytes(pending), digests)
        finally:
            if writing is not None:  # refused or cancelled mid-upload: let the write finish first
                await asyncio.gather(writing, return_exceptions=True)
        return total


def _check_chunk(chunk: pb.ModerateChunk, total: int, limit: int) -> None:
    if chunk.WhichOneof("payload") != "data":
        raise BadField(
            "header: only the first ModerateStream message may carry the header; "
            "send the media as data messages",
            field="header",
        )
    if total > limit:
        # Refuse while receiving: the rest of the upload is never read.
        raise MediaTooLarge(
            f"the streamed media exceeds the {limit}-byte limit; send a shorter or lower-bitrate video",
            limit="bytes",
            value=total,
            maximum=limit,
        )
