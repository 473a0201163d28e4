"""The ledger's parts on a real SQLite store, in-process: group commit batches verdicts that
finish together, maintenance prunes by retention and drains the spool, a down store is probed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from gateway.ledger import LedgerMaintenance, VerdictLedger
from gateway.ledger.group_commit import GroupCommit
from modgate.store import StoreSettings, VerdictStore
from tests.modgate.store.records import record


def settings(tmp_path: Path, **kw: object) -> StoreSettings:
    return StoreSettings(url=f"sqlite:///{tmp_path / 'verdicts.db'}", spool_dir=tmp_path / "spool", **kw)


def test_verdicts_finishing_together_share_commits(tmp_path: Path) -> None:
    store = VerdictStore.open(settings(tmp_path))
    pool = ThreadPoolExecutor(2)
    batches: list[int] = []

    async def main() -> list[bool]:
        loop = asyncio.get_running_loop()

        async def run(_operation: str, call: Callable[[VerdictStore], list[bool]]) -> list[bool]:
            def counted(store: VerdictStore) -> list[bool]:
                result = call(store)
                batches.append(len(result))
                return result

            return await loop.run_in_executor(pool, counted, store)

        group = GroupCommit(run, max_batch=16)
        records = [record(f"g-{i}") for i in range(40)]
        first = await asyncio.gather(*(group.commit(r, None) for r in records))
        again = await group.commit(records[0], None)  # already stored: not new, no error
        return [*first, again]

    results = asyncio.run(main())
    assert results[:40] == [True] * 40 and results[40] is False
    assert sum(batches[:-1]) == 40 and max(batches) <= 16 and len(batches) < 40
    assert store.count() == 40
    store.close()


def test_maintenance_prunes_past_retention_and_drains_the_spool(tmp_path: Path) -> None:
    ledger = VerdictLedger(settings(tmp_path, retention_days=1))
    store = ledger.store()
    now = time.time()
    store.commit_many([record("old", decided_at=now - 3 * 86400), record("recent", decided_at=now - 3600)])
    ledger.spool.append(record("spooled"))
    maintenance = LedgerMaintenance(ledger)

    async def main() -> tuple[int, int]:
        try:
            return await maintenance.prune(), await maintenance.drain()
        finally:
            await ledger.aclose()

    assert asyncio.run(main()) == (1, 1)
    reopened = VerdictStore.open(settings(tmp_path))
    assert {s.request_id for s in reopened.summaries()} == {"recent", "spooled"}
    assert ledger.spool.pending() == 0
    reopened.close()


def test_zero_retention_keeps_everything(tmp_path: Path) -> None:
    ledger = VerdictLedger(settings(tmp_path, retention_days=0))
    ledger.store().commit(record("ancient", decided_at=1.0))

    async def main() -> int:
        try:
            return await LedgerMaintenance(ledger).prune()
        finally:
            await ledger.aclose()

    assert asyncio.run(main()) == 0
