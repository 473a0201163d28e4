"""Runs the splitter off the asyncio loop, in a pool of worker processes.

Why processes rather than threads: PyAV releases the GIL while FFmpeg decodes, so threads
would give the same throughput, but a process is the only thing that contains a decoder that
crashes (segfault) or spins inside one C call on a malformed file. A crashed worker breaks
only the pool, which is rebuilt; a split that overruns its budget has its worker killed.
Workers are spawned, never forked: the gateway process runs gRPC threads, and forking a
multi-threaded process can deadlock the child. The cost is paid once at startup (`start()`),
and media stays small enough to pickle (unary <= 32 MiB; streamed uploads travel as a path).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import multiprocessing
import signal
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from gateway.errors import DeadlineExceeded, DecodeBudgetExceeded, UndecodableMedia
from gateway.media.limits import MediaLimits, SplitOptions
from gateway.media.splitter import split_media
from gateway.media.types import SplitMedia, StreamKind

log = logging.getLogger(__name__)

# Time a worker gets past its budget before it is presumed stuck and killed (the splitter
# checks its own budget between packets, so only a hang inside one FFmpeg call gets here).
_KILL_GRACE_S = 5.0


def _worker_init() -> None:
    # Ctrl-C is the parent's business; the parent shuts the pool down.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _warm() -> bool:
    return True


class SplitWorkers:
    """An async front for split_media. workers=0 runs splits in a thread instead (no crash
    isolation; for tools and debugging)."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._executor: ProcessPoolExecutor | None = None
        # Only `workers` splits run at once, so a split's timeout measures its own run time,
        # not time spent queued behind others.
        self._slots = asyncio.Semaphore(max(workers, 1))

    async def start(self) -> None:
        if self.workers == 0 or self._executor is not None:
            return
        self._executor = self._new_executor()
        loop = asyncio.get_running_loop()
        # Spawn every worker now (each imports numpy and av) instead of on the first request.
        warmups = [loop.run_in_executor(self._executor, _warm) for _ in range(self.workers)]
        await asyncio.gather(*warmups)

    def _new_executor(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_worker_init,
        )

    async def close(self) -> None:
        executor, self._executor = self._executor, None
        if executor is not None:
            await asyncio.to_thread(executor.shutdown, wait=True, cancel_futures=True)

    async def split(
        self,
        source: bytes | Path,
        options: SplitOptions,
        limits: MediaLimits,
        *,
        deadline_s: float | None = None,
    ) -> SplitMedia:
        async with self._slots:
            if self.workers == 0:
                return await asyncio.to_thread(split_media, source, options, limits, deadline_s=deadline_s)
            try:
                return await self._run(source, options, limits, deadline_s)
            except BrokenProcessPool:
                # Some split crashed its worker; it may not have been this one (every split in
                # flight fails together), so retry once on a fresh pool.
                log.warning("split worker pool broke; rebuilding it and retrying once")
                self._rebuild()
            try:
                return await self._run(source, options, limits, deadline_s)
            except BrokenProcessPool:
                self._rebuild()
                raise UndecodableMedia(
                    "the media crashed the decoder twice; it is malformed: re-encode it as H.264/AAC mp4"
                ) from None

    async def split_audio_first(
        self,
        source: bytes | Path,
        options: SplitOptions,
        limits: MediaLimits,
        *,
        on_audio: Callable[[SplitMedia], object],
        deadline_s: float | None = None,
    ) -> SplitMedia:
        """Split audio (with subtitles and metadata) and video in two workers at once, and call
        on_audio(audio part) as soon as the audio part is ready: speech recognition, the longest
        stage of a video, starts while frames are still decoding. Returns the merged media,
        the same as split() gives (each part reads the container itself)."""
        # The audio part asks for a worker first: with a single worker the parts run one after
        # the other, audio first, and speech still starts before the frames are decoded.
        audio_task = asyncio.create_task(
            self.split(source, dataclasses.replace(options, video=False), limits, deadline_s=deadline_s)
        )
        video_task = asyncio.create_task(
            self.split(
                source,
                dataclasses.replace(options, audio=False, subtitles=False),
                limits,
                deadline_s=deadline_s,
            )
        )
        try:
            audio_part = await audio_task
            on_audio(audio_part)
            video_part = await video_task
        except BaseException:
            for task in (audio_task, video_task):
                task.cancel()
            await asyncio.gather(audio_task, video_task, return_exceptions=True)
            raise
        return merge_parts(audio_part, video_part)

    async def _run(
        self, source: bytes | Path, options: SplitOptions, limits: MediaLimits, deadline_s: float | None
    ) -> SplitMedia:
        if self._executor is None:
            await self.start()
        assert self._executor is not None
        loop = asyncio.get_running_loop()
        call = functools.partial(split_media, source, options, limits, deadline_s=deadline_s)
        limit_s = limits.decode_budget_s if deadline_s is None else min(limits.decode_budget_s, deadline_s)
        started = time.monotonic()
        future = loop.run_in_executor(self._executor, call)
        try:
            return await asyncio.wait_for(future, timeout=limit_s + _KILL_GRACE_S)
        except TimeoutError:
            log.error("split worker stuck for %.1f s; killing the worker pool", time.monotonic() - started)
            self._rebuild(kill=True)
            if deadline_s is not None and deadline_s < limits.decode_budget_s:
                raise DeadlineExceeded(
                    "the request deadline passed while splitting the media; allow a longer deadline "
                    "or send shorter media"
                ) from None
            raise DecodeBudgetExceeded(
                f"decoding the media hung past the {limits.decode_budget_s:.0f} s decode budget; the "
                "file is probably malformed: re-encode it as H.264/AAC mp4",
                limit="decode_budget_s",
                value=round(time.monotonic() - started, 3),
                maximum=limits.decode_budget_s,
            ) from None

    def _rebuild(self, *, kill: bool = False) -> None:
        old, self._executor = self._executor, self._new_executor()
        if old is None:
            return
        if kill:
            # ProcessPoolExecutor has no public way to stop a busy worker before Python 3.14.
            for process in list(getattr(old, "_processes", {}).values()):
                with contextlib.suppress(Exception):
                    process.kill()
        old.shutdown(wait=False, cancel_futures=True)


def merge_parts(audio: SplitMedia, video: SplitMedia) -> SplitMedia:
    """One SplitMedia from an audio(+subtitles) split and a video-only split of the same media."""
    undecodable = tuple(dict.fromkeys((*audio.info.undecodable_streams, *video.info.undecodable_streams)))
    # Each stream as reported by the part that read it: video streams by the video part, the
    # rest (audio, subtitles, attachments, data) by the audio part.
    video_reports = {r.index: r for r in video.info.streams if r.kind is StreamKind.VIDEO}
    streams = tuple(video_reports.get(r.index, r) for r in audio.info.streams)
    info = dataclasses.replace(
        video.info,
        has_audio=audio.info.has_audio,
        audio_codec=audio.info.audio_codec,
        subtitle_streams=audio.info.subtitle_streams,
        undecodable_streams=undecodable,
        streams=streams,
    )
    timings = {**{f"audio_{k}": v for k, v in audio.timings_ms.items()}, **video.timings_ms}
    return SplitMedia(
        info=info,
        audio_tracks=audio.audio_tracks,
        frames=video.frames,
        subtitles=audio.subtitles,
        metadata=audio.metadata,
        timings_ms=timings,
        counters={**audio.counters, **video.counters},
    )
