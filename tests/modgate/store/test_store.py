"""VerdictStore on a real database (SQLite and PostgreSQL: the same tests, `store_url`)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from modgate.store import Claimed, Decided, Held, StoreSettings, VerdictStore
from modgate.store.engine import StoreError, create_engine, head_revision, migrate
from modgate.store.schema import metadata
from tests.modgate.store.records import POLICY, record


@pytest.fixture
def store(store_url: str) -> Iterator[VerdictStore]:
    opened = VerdictStore.open(StoreSettings(url=store_url))
    try:
        yield opened
    finally:
        opened.close()


def test_head_migration_creates_exactly_the_schema(store: VerdictStore) -> None:
    with store.engine.connect() as connection:
        context = MigrationContext.configure(connection)
        assert context.get_current_revision() == head_revision()
        assert compare_metadata(context, metadata) == []


def test_migrate_twice_is_a_no_op_and_a_newer_schema_is_refused(store: VerdictStore) -> None:
    assert migrate(store.engine) == head_revision()
    with store.engine.begin() as connection:
        connection.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(StoreError, match="newer version"):
        migrate(store.engine)


def test_commit_then_find_get_and_the_policy_once(store: VerdictStore) -> None:
    first, second = record("r-1", content_id="c-1"), record("r-2", content_id="c-1")
    assert store.commit(first) is True
    assert store.commit(first) is False  # a spooled copy drained twice: stored once
    assert store.commit(second) is True
    found = store.find("anonymous", "r-1")
    assert found is not None and found.verdict_id == first.verdict_id
    assert found.verdict == first.verdict and found.fusion == first.fusion and found.models == first.models
    got = store.get(second.verdict_id)
    assert got is not None and got.policy == POLICY and got.policy.document == POLICY.document
    assert store.find("other-caller", "r-1") is None
    assert store.get("0" * 32) is None
    with store.engine.connect() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM policies")).scalar_one() == 1


def test_summaries_filter_and_order_newest_first(store: VerdictStore) -> None:
    now = time.time()
    store.commit_many(
        [
            record("old", decision="BLOCK", decided_at=now - 7200, content_id="x"),
            record("mid", decision="ALLOW", decided_at=now - 3600, content_id="y"),
            record("new", decision="BLOCK", decided_at=now - 10, content_id="x"),
        ]
    )
    assert [s.request_id for s in store.summaries()] == ["new", "mid", "old"]
    assert [s.request_id for s in store.summaries(decision="block")] == ["new", "old"]
    assert [s.request_id for s in store.summaries(since=now - 4000)] == ["new", "mid"]
    assert [s.request_id for s in store.summaries(content_id="x", limit=1)] == ["new"]
    assert store.count() == 3 and store.count(decision="BLOCK", since=now - 100) == 1


def test_scan_pages_in_decision_order(store: VerdictStore) -> None:
    now = time.time()
    records = [record(f"r-{i}", decided_at=now - 100 + i) for i in range(25)]
    store.commit_many(list(reversed(records)))
    assert [r.request_id for r in store.scan(batch=7)] == [r.request_id for r in records]
    assert [r.request_id for r in store.scan(limit=10, batch=4)] == [r.request_id for r in records[:10]]
    assert [r.request_id for r in store.scan(since=now - 80)] == [r.request_id for r in records[20:]]


def test_prune_deletes_only_older_verdicts(store: VerdictStore) -> None:
    now = time.time()
    store.commit_many([record("old", decided_at=now - 10 * 86400), record("new", decided_at=now)])
    assert store.prune(older_than=now - 86400) == 1
    assert store.find("anonymous", "old") is None and store.find("anonymous", "new") is not None


def test_claims_first_wins_duplicates_wait_expired_ones_are_taken_over(store: VerdictStore) -> None:
    if not store.shared:
        pytest.skip("SQLite serves one gateway process: its claims are lookups (next test)")
    assert store.claim("c", "r", "owner-a", "d1", lease_s=30) == Claimed()
    held = store.claim("c", "r", "owner-b", "d1", lease_s=30)
    assert isinstance(held, Held) and held.owner == "owner-a" and held.request_digest == "d1"
    store.release("c", "r", "owner-b")  # not its claim: nothing happens
    assert isinstance(store.claim("c", "r", "owner-b", "d1", lease_s=30), Held)
    store.release("c", "r", "owner-a")
    assert store.claim("c", "r", "owner-b", "d1", lease_s=-1) == Claimed()  # expired at once
    assert store.claim("c", "r", "owner-c", "d1", lease_s=30) == Claimed()  # taken over
    decided = record("r", caller="c")
    assert store.commit(decided, owner="owner-c") is True
    outcome = store.claim("c", "r", "owner-d", "d1", lease_s=30)
    assert isinstance(outcome, Decided) and outcome.record.verdict_id == decided.verdict_id
    with store.engine.connect() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM claims")).scalar_one() == 0


def test_an_unshared_store_claims_by_lookup_alone(store: VerdictStore) -> None:
    if store.shared:
        pytest.skip("PostgreSQL coordinates gateways with claim rows (previous test)")
    assert store.claim("c", "r", "owner-a", "d1", lease_s=30) == Claimed()
    assert store.claim("c", "r", "owner-b", "d1", lease_s=30) == Claimed()  # no row was written
    decided = record("r", caller="c")
    store.commit(decided, owner="owner-a")
    outcome = store.claim("c", "r", "owner-c", "d1", lease_s=30)
    assert isinstance(outcome, Decided) and outcome.record.verdict_id == decided.verdict_id


def test_an_unreachable_store_is_unavailable_not_a_crash(free_port) -> None:  # type: ignore[no-untyped-def]
    from modgate.store import StoreUnavailable

    url = f"postgresql://modgate@127.0.0.1:{free_port()}/modgate"
    with pytest.raises(StoreUnavailable, match="cannot open the verdict store"):
        VerdictStore.open(StoreSettings(url=url, connect_timeout_s=1))


def test_unsupported_urls_say_what_to_use() -> None:
    with pytest.raises(StoreError, match="use sqlite:///PATH or postgresql://"):
        create_engine(StoreSettings(url="mysql://u:secret@db/x"))
