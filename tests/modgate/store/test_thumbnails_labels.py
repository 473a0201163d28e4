"""Thumbnails and review labels in the store (SQLite and PostgreSQL): written with their
verdict, spooled intact, pruned with it; the latest label of a verdict is the one read."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator

import pytest

from modgate.store import StoreSettings, VerdictStore
from modgate.store.labels import ReviewLabel, add_label, labelled_verdicts
from modgate.store.records import Thumbnail, VerdictRecord
from tests.modgate.store.records import record

THUMB = Thumbnail(
    frame_index=3, time_ms=3000, width=160, height=90, jpeg=b"\xff\xd8jpeg\xff\xd9", stream_index=0
)


@pytest.fixture
def store(store_url: str) -> Iterator[VerdictStore]:
    opened = VerdictStore.open(StoreSettings(url=store_url))
    try:
        yield opened
    finally:
        opened.close()


def test_thumbnails_are_stored_with_their_verdict_spooled_intact_and_pruned_with_it(
    store: VerdictStore,
) -> None:
    old = dataclasses.replace(record("old", decided_at=time.time() - 1000), thumbnails=(THUMB,))
    assert VerdictRecord.from_json(old.to_json()).thumbnails == (THUMB,)
    assert store.commit(old)
    assert store.thumbnails(old.verdict_id) == [THUMB]
    assert store.get(old.verdict_id) is not None and store.thumbnails("nothing") == []
    store.prune(older_than=time.time() - 10)
    assert store.get(old.verdict_id) is None and store.thumbnails(old.verdict_id) == []


def test_the_latest_label_of_a_verdict_is_read_and_labels_are_checked(store: VerdictStore) -> None:
    first, second = record("a", content_id="c-a"), record("b", content_id="c-b")
    store.commit(first)
    store.commit(second)
    add_label(store, ReviewLabel(first.verdict_id, "ann", "ALLOW", labelled_at=100.0))
    add_label(store, ReviewLabel(first.verdict_id, "bob", "BLOCK", "violence", "threat", labelled_at=200.0))
    add_label(store, ReviewLabel(second.verdict_id, "ann", "ALLOW", labelled_at=150.0))
    read = list(labelled_verdicts(store))
    assert [(r.label.verdict_id, r.label.reviewer, r.label.decision) for r in read] == [
        (second.verdict_id, "ann", "ALLOW"),
        (first.verdict_id, "bob", "BLOCK"),
    ]
    assert read[1].verdict == first.verdict and read[1].content_id == "c-a"
    assert [r.label.reviewer for r in labelled_verdicts(store, since=180.0)] == ["bob"]
    with pytest.raises(ValueError, match="names the category"):
        ReviewLabel(first.verdict_id, "ann", "BLOCK")
    with pytest.raises(ValueError, match="ALLOW or BLOCK"):
        ReviewLabel(first.verdict_id, "ann", "REVIEW")
