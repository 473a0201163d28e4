"""replay() in several processes: this one reads the store, forked workers re-fuse.

Records go to the workers in chunks (their place in scan order with them), each chunk with
the stored policy documents it needs; each worker answers a ReplayReport of its chunk, merged
here as it arrives. At most two chunks per worker are in flight, so memory stays bounded
whatever the store holds. The merged report is the one a single process builds (counts add
up; the biggest changes are picked by scan position among equals), only faster where there
are idle cores: reading a record costs a small fraction of re-fusing it, but passing it to a
worker costs more than nothing, so on a machine whose CPU others hold it is slower
(bench/README.md, policy replay).

Workers are forked (they inherit the imported code and the policy); where fork is not
available, replay runs in this process.
"""

from __future__ import annotations

import concurrent.futures as cf
import gc
import multiprocessing
import time
from collections.abc import Iterable, Iterator
from typing import Any

from gateway.replay.engine import BATCH, Progress, Replay, new_report
from gateway.replay.report import ReplayReport
from modgate.policy import Policy
from modgate.store import ReplayRow, VerdictStore

CHUNK = 500
IN_FLIGHT_PER_WORKER = 2

# The policy and top-K of the replay a forked worker serves (set by _start in each worker).
_WORKER: dict[str, Any] = {}


def _start(policy: Policy, top: int) -> None:
    _WORKER.update(policy=policy, top=top)
    # Once per worker, not per chunk: a full collection of the inherited heap costs ~0.1 s.
    gc.collect()
    gc.freeze()


def _refuse_chunk(
    rows: list[ReplayRow], first_position: int, documents: dict[str, dict[str, Any] | None]
) -> ReplayReport:
    policy: Policy = _WORKER["policy"]
    report = new_report(policy, since=None, limit=None, top=_WORKER["top"])
    run = Replay(documents.get, policy, report)
    for offset, row in enumerate(rows):
        run.add(row, first_position + offset)
    return report


def replay_in_processes(
    store: VerdictStore,
    policy: Policy,
    *,
    since: float | None,
    limit: int | None,
    top: int,
    progress: Progress | None,
    workers: int,
    total: int | None,
) -> ReplayReport:
    from gateway.replay.engine import replay

    if "fork" not in multiprocessing.get_all_start_methods():
        return replay(store, policy, since=since, limit=limit, top=top, progress=progress)
    report = new_report(policy, since=since, limit=limit, top=top)
    documents: dict[str, dict[str, Any] | None] = {}
    started = time.perf_counter()
    context = multiprocessing.get_context("fork")
    with cf.ProcessPoolExecutor(
        workers, mp_context=context, initializer=_start, initargs=(policy, top)
    ) as pool:
        pending: set[cf.Future[ReplayReport]] = set()
        for position, chunk in _chunks(store.scan_for_replay(since=since, limit=limit, batch=BATCH)):
            needed = {row.policy.digest for row in chunk}
            for digest in needed - documents.keys():
                documents[digest] = store.policy_document(digest)
            pending.add(pool.submit(_refuse_chunk, chunk, position, {d: documents[d] for d in needed}))
            if len(pending) >= workers * IN_FLIGHT_PER_WORKER:
                pending = _merge_done(report, pending, cf.FIRST_COMPLETED, progress, total)
        _merge_done(report, pending, cf.ALL_COMPLETED, progress, total)
    report.seconds = time.perf_counter() - started
    if progress is not None:
        progress(report.scanned, total)
    return report


def _chunks(rows: Iterable[ReplayRow]) -> Iterator[tuple[int, list[ReplayRow]]]:
    chunk: list[ReplayRow] = []
    position = 0
    for row in rows:
        chunk.append(row)
        if len(chunk) == CHUNK:
            yield position, chunk
            position += len(chunk)
            chunk = []
    if chunk:
        yield position, chunk


def _merge_done(
    report: ReplayReport,
    pending: set[cf.Future[ReplayReport]],
    when: str,
    progress: Progress | None,
    total: int | None,
) -> set[cf.Future[ReplayReport]]:
    done, left = cf.wait(pending, return_when=when)
    for future in done:
        report.merge(future.result())
    if progress is not None:
        progress(report.scanned, total)
    return left
