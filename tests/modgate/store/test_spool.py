"""VerdictSpool: appended records survive, drain into the store once, torn lines are skipped."""

from __future__ import annotations

from pathlib import Path

from modgate.store import StoreSettings, VerdictStore
from modgate.store.spool import VerdictSpool
from tests.modgate.store.records import record


def test_spooled_records_drain_once_into_the_store(tmp_path: Path, store_url: str) -> None:
    spool = VerdictSpool(tmp_path / "spool")
    records = [record(f"r-{i}") for i in range(5)]
    for item in records:
        spool.append(item)
    assert spool.pending() == 5
    store = VerdictStore.open(StoreSettings(url=store_url))
    store.commit(records[0])  # stored before the store went down: not stored twice
    assert spool.drain(store) == 4
    assert spool.pending() == 0 and spool.segments() == []
    assert store.count() == 5
    got = store.get(records[3].verdict_id)
    assert got is not None and got.verdict == records[3].verdict
    assert got.policy.document == records[3].policy.document
    spool.append(record("after"))  # appends after a drain go to a new segment
    assert spool.drain(store) == 1 and store.count() == 6
    store.close()


def test_a_torn_last_line_is_skipped(tmp_path: Path, store_url: str) -> None:
    spool = VerdictSpool(tmp_path / "spool")
    spool.append(record("whole"))
    segment = spool.segments()[0]
    with segment.open("a") as handle:
        handle.write('{"verdict_id": "torn", "caller"')  # the process died mid-write
    store = VerdictStore.open(StoreSettings(url=store_url))
    assert spool.drain(store) == 1
    assert store.find("anonymous", "whole") is not None
    store.close()
