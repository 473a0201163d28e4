"""replay(store, policy): every stored verdict re-fused under another policy, no model called.

    report = replay(store, load_policy("candidate.yaml"), since=time.time() - 86400, workers=2)

For each record (VerdictStore.scan_for_replay, oldest first, constant memory): refuse(),
the decision Orchestrator.run would have reached on the same scores, compared with the stored
decision into the report's matrix. Each stored policy document is compared with the new
policy once (inputs.py): a verdict holding scores a changed scoring input makes stale is
tallied apart, flagged as needing a rescan.

Speed (bench/replay.py; target >= 2,000 verdicts/s on SQLite): per verdict the cost is
fusion itself and reading the document, which is parsed and validated in one pass from its
JSON text (FusionDocument.read); the collector is kept off what was alive before the loop
(gc.freeze). With workers > 1 the records are re-fused in that many forked processes
(parallel.py) while this one reads the store: the same report, in scan order.
"""

from __future__ import annotations

import contextlib
import gc
import time
from collections.abc import Callable, Iterator
from typing import Any

from gateway.fusion import NoVerdict
from gateway.orchestrator.record import ModelsNeverRan, RecordError, refuse
from gateway.orchestrator.stored import FusionDocument
from gateway.replay.inputs import InputChange, InputCheck, check_inputs, record_scopes
from gateway.replay.report import ERROR, RISK_EPSILON, Change, ReplayReport, StaleField, decision_name
from modgate.policy import Policy
from modgate.store import ReplayRow, VerdictStore
from modgate.v1 import moderation_pb2 as pb

# progress(done, total): called after every batch of records (total: None when unknown).
Progress = Callable[[int, int | None], None]
# digest -> the stored policy document (None: not in the store).
Documents = Callable[[str], dict[str, Any] | None]
BATCH = 1000


class Replay:
    """One share of a replay: the policy, the input checks per stored policy, the report."""

    def __init__(self, documents: Documents, policy: Policy, report: ReplayReport) -> None:
        self.documents = documents
        self.policy = policy
        self.report = report
        self._checks: dict[str, InputCheck] = {}

    def check(self, record: ReplayRow) -> InputCheck:
        digest = record.policy.digest
        found = self._checks.get(digest)
        if found is None:
            found = self._checks[digest] = check_inputs(self.documents(digest), self.policy)
            self._note_changes(record, found)
        return found

    def _note_changes(self, record: ReplayRow, check: InputCheck) -> None:
        label = f"{record.policy.name}@{record.policy.version}"
        for change in check.changes:
            if change.rescan:
                self.report.stale.setdefault(change.path, StaleField(change)).policies.add(label)
            else:
                self.report.refusable.setdefault(change.path, (change, set()))[1].add(label)

    def add(self, record: ReplayRow, position: int) -> None:
        """Re-fuse one record (`position`: its place in scan order, which breaks ties in top)."""
        report = self.report
        report.scanned += 1
        try:
            document = FusionDocument.read(record.fusion_json)
        except RecordError:
            report.not_refused["unknown_record"] += 1
            return
        check = self.check(record)
        stale = check.stale_for(record_scopes(document)) if check.stale else []
        try:
            fused = refuse(document, self.policy)
        except NoVerdict as exc:
            report.errors[str(exc)] += 1
            self._tally(record.decision, ERROR, stale)
            return
        except ModelsNeverRan:
            report.not_refused["models_never_ran"] += 1
            return
        if fused is None:
            report.not_refused["unfused"] += 1
            return
        replayed = decision_name(fused.decision)
        self._tally(record.decision, replayed, stale)
        if not stale and (record.decision != "ALLOW" or fused.decision != pb.DECISION_ALLOW):
            # A stored ALLOW had every category under its review threshold, so with a replayed
            # ALLOW nothing crossed: the stored Verdict is parsed only when something may have.
            report.crossed(_stored_categories(record), fused.categories)
        if replayed != record.decision or abs(fused.risk - record.risk) > RISK_EPSILON:
            change = Change(
                verdict_id=record.verdict_id,
                decided_at=record.decided_at,
                content_id=record.content_id,
                request_id=record.request_id,
                policy=f"{record.policy.name}@{record.policy.version}",
                stored=record.decision,
                replayed=replayed,
                stored_risk=record.risk,
                replayed_risk=fused.risk,
                needs_rescan=bool(stale),
                fused=fused,
            )
            report.offer(change, position)

    def _tally(self, stored: str, replayed: str, stale: list[InputChange]) -> None:
        (self.report.rescan if stale else self.report.matrix).add(stored, replayed)
        for change in stale:
            self.report.stale[change.path].verdicts += 1


def _stored_categories(record: ReplayRow) -> dict[str, int]:
    verdict = pb.Verdict.FromString(record.verdict)
    return {c.category: c.decision for c in verdict.categories}


@contextlib.contextmanager
def frozen_heap() -> Iterator[None]:
    """Objects alive now are left out of the collections the loop triggers (see the docstring)."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def new_report(policy: Policy, *, since: float | None, limit: int | None, top: int) -> ReplayReport:
    return ReplayReport(
        policy={"name": policy.name, "version": policy.version, "digest": policy.digest},
        since=since,
        limit=limit,
        top_k=top,
    )


def replay(
    store: VerdictStore,
    policy: Policy,
    *,
    since: float | None = None,
    limit: int | None = None,
    top: int = 10,
    progress: Progress | None = None,
    workers: int = 1,
) -> ReplayReport:
    """Re-fuse the stored verdicts decided at or after `since` (Unix seconds; None: all), the
    oldest `limit` of them, under `policy`, in `workers` processes (1: this one). Raises
    StoreUnavailable when the store fails."""
    total = None
    if progress is not None or workers > 1:
        counted = store.count(since=since)
        total = counted if limit is None else min(limit, counted)
    if workers > 1 and total is not None and total >= 2 * BATCH:
        from gateway.replay.parallel import replay_in_processes

        return replay_in_processes(
            store, policy, since=since, limit=limit, top=top, progress=progress, workers=workers, total=total
        )
    report = new_report(policy, since=since, limit=limit, top=top)
    run = Replay(store.policy_document, policy, report)
    started = time.perf_counter()
    with frozen_heap():
        for position, record in enumerate(store.scan_for_replay(since=since, limit=limit, batch=BATCH)):
            run.add(record, position)
            if progress is not None and report.scanned % BATCH == 0:
                progress(report.scanned, total)
    report.seconds = time.perf_counter() - started
    if progress is not None:
        progress(report.scanned, total)
    return report
