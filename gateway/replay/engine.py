"""replay(store, policy): every stored verdict re-fused under another policy, no model called.

    report = replay(store, load_policy("candidate.yaml"), since=time.time() - 86400)

For each record (VerdictStore.scan, oldest first, constant memory): refuse(record.fusion,
policy), the decision Orchestrator.run would have reached on the same scores; compared with
the stored decision into the report's matrix. Each stored policy document is compared with
the new policy once (inputs.py): a verdict holding scores a changed scoring input makes
stale is tallied apart, flagged as needing a rescan.

Speed (bench/replay.py, >= 2,000 verdicts/s on SQLite): the loop's cost is JSON decoding of
the fusion documents and fusion itself; the collector is paused for it (gc.freeze: what is
alive before the loop is not traversed again by every collection the loop's allocations
trigger).
"""

from __future__ import annotations

import contextlib
import gc
import time
from collections.abc import Callable, Iterator

from gateway.fusion import NoVerdict
from gateway.orchestrator.record import ModelsNeverRan, RecordError, refuse
from gateway.orchestrator.stored import FusionDocument
from gateway.replay.inputs import InputChange, InputCheck, check_inputs, record_scopes
from gateway.replay.report import (
    ERROR,
    RISK_EPSILON,
    Change,
    ReplayReport,
    StaleField,
    decision_name,
)
from modgate.policy import Policy
from modgate.store import ReplayRow, VerdictStore
from modgate.v1 import moderation_pb2 as pb

# progress(done, total): called after every batch of records (total: None when unknown).
Progress = Callable[[int, int | None], None]
BATCH = 1000


class Replay:
    """One replay's state: the policy, the input checks per stored policy, the report."""

    def __init__(self, store: VerdictStore, policy: Policy, report: ReplayReport) -> None:
        self.store = store
        self.policy = policy
        self.report = report
        self._checks: dict[str, InputCheck] = {}

    def check(self, record: ReplayRow) -> InputCheck:
        digest = record.policy.digest
        found = self._checks.get(digest)
        if found is None:
            found = self._checks[digest] = check_inputs(self.store.policy_document(digest), self.policy)
            self._note_changes(record, found)
        return found

    def _note_changes(self, record: ReplayRow, check: InputCheck) -> None:
        label = f"{record.policy.name}@{record.policy.version}"
        for change in check.changes:
            if change.rescan:
                self.report.stale.setdefault(change.path, StaleField(change)).policies.add(label)
            else:
                self.report.refusable.setdefault(change.path, (change, set()))[1].add(label)

    def add(self, record: ReplayRow) -> None:
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
            (report.rescan if stale else report.matrix).add(record.decision, ERROR)
            self._count_stale(stale)
            return
        except ModelsNeverRan:
            report.not_refused["models_never_ran"] += 1
            return
        except RecordError:
            report.not_refused["unknown_record"] += 1
            return
        if fused is None:
            report.not_refused["unfused"] += 1
            return
        replayed = decision_name(fused.decision)
        (report.rescan if stale else report.matrix).add(record.decision, replayed)
        self._count_stale(stale)
        if not stale:
            report.crossed(_stored_categories(record), fused.categories)
        if replayed != record.decision or abs(fused.risk - record.risk) > RISK_EPSILON:
            report.offer(
                Change(
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
            )

    def _count_stale(self, stale: list[InputChange]) -> None:
        for change in stale:
            self.report.stale[change.path].verdicts += 1


def _stored_categories(record: ReplayRow) -> dict[str, int]:
    verdict = pb.Verdict.FromString(record.verdict)
    return {c.category: c.decision for c in verdict.categories}


@contextlib.contextmanager
def _frozen_heap() -> Iterator[None]:
    """Objects alive now are left out of the collections the loop triggers (see the docstring)."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def replay(
    store: VerdictStore,
    policy: Policy,
    *,
    since: float | None = None,
    limit: int | None = None,
    top: int = 10,
    progress: Progress | None = None,
) -> ReplayReport:
    """Re-fuse the stored verdicts decided at or after `since` (Unix seconds; None: all), the
    oldest `limit` of them, under `policy`. Raises StoreUnavailable when the store fails."""
    report = ReplayReport(
        policy={"name": policy.name, "version": policy.version, "digest": policy.digest},
        since=since,
        limit=limit,
        top_k=top,
    )
    total = None
    if progress is not None:
        counted = store.count(since=since)
        total = counted if limit is None else min(limit, counted)
    run = Replay(store, policy, report)
    started = time.perf_counter()
    with _frozen_heap():
        for record in store.scan_for_replay(since=since, limit=limit, batch=BATCH):
            run.add(record)
            if progress is not None and report.scanned % BATCH == 0:
                progress(report.scanned, total)
    report.seconds = time.perf_counter() - started
    if progress is not None:
        progress(report.scanned, total)
    return report
