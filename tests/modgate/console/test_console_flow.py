"""The reviewer's work over HTTP against a real console process and a real SQLite store:
log in, the queue in order and filtered, claim with a lease (a second reviewer refused),
the item page, reveal, decide -> label + audit rows, the item leaves the queue."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa

from modgate.store import VerdictStore
from modgate.store.labels import labelled_verdicts
from modgate.store.schema import audit, review_leases
from tests.console_process import ConsoleProcess
from tests.modgate.console.client import Reviewer
from tests.modgate.console.records import Stored


def queue_ids(client: Reviewer) -> list[str]:
    page = client.get("/queue")
    assert page.status_code == 200
    return re.findall(r'data-verdict-id="([0-9a-f]{32})"', page.text)


def audit_actions(store: VerdictStore, verdict_id: str) -> list[tuple[str, str]]:
    with store.connect() as connection:
        rows = connection.execute(
            sa.select(audit.c.actor, audit.c.action)
            .where(audit.c.verdict_id == verdict_id)
            .order_by(audit.c.at)
        ).all()
    return [(r.actor, r.action) for r in rows]


def test_queue_is_review_only_riskiest_then_oldest_and_filters_by_post(
    client: Callable[[], Reviewer], tokens: dict[str, str], stored: Stored
) -> None:
    alice = client()
    alice.login(tokens["alice"])
    assert queue_ids(alice) == stored.queue_order  # no BLOCK, no ALLOW

    for fields, expected in [
        ({"category": "hate"}, [stored.hate_canary, stored.strict]),
        ({"variant": "canary"}, [stored.hate_canary]),
        ({"policy": "strict"}, [stored.strict]),
        ({"min_age_h": "1"}, [stored.top_old, stored.hate_canary]),
        ({"max_age_h": "1"}, [stored.top_new, stored.strict]),
        ({"clear": "1"}, stored.queue_order),
    ]:
        response = alice.post("/queue/filter", fields)
        assert response.status_code == 303
        assert response.headers["location"] == "/queue"  # the filter is never in a URL
        assert queue_ids(alice) == expected, fields

    response = alice.post("/queue/filter", {"min_age_h": "soon"})
    assert response.status_code == 303
    assert "filter not applied" in alice.get("/queue").text


def test_claim_lease_refuses_a_second_reviewer_and_decide_writes_label_and_audit(
    client: Callable[[], Reviewer], tokens: dict[str, str], stored: Stored, store: VerdictStore
) -> None:
    alice, bob = client(), client()
    alice.login(tokens["alice"])
    bob.login(tokens["bob"])
    item = stored.top_old

    claimed = alice.post(f"/items/{item}/claim")
    assert claimed.status_code == 303 and claimed.headers["location"] == f"/items/{item}"
    refused = bob.post(f"/items/{item}/claim")
    assert refused.status_code == 409
    assert "alice is working this item" in refused.text
    with store.connect() as connection:
        leases = connection.execute(sa.select(review_leases)).all()
    assert [(lease.verdict_id, lease.reviewer) for lease in leases] == [(item, "alice")]

    # Bob may look but not decide; his decision is refused and nothing is written.
    assert 'id="decide-form"' not in bob.get(f"/items/{item}").text
    assert bob.post(f"/items/{item}/decide", {"decision": "ALLOW"}).status_code == 409

    page = alice.get(f"/items/{item}")
    assert 'id="decide-form"' in page.text
    bad = alice.post(f"/items/{item}/decide", {"decision": "BLOCK", "category": "not-a-category"})
    assert bad.status_code == 409 and "categories" in bad.text
    decided = alice.post(
        f"/items/{item}/decide", {"decision": "BLOCK", "category": "violence", "note": "threat"}
    )
    assert decided.status_code == 303 and decided.headers["location"] == "/queue"

    labels = {lv.label.verdict_id: lv.label for lv in labelled_verdicts(store)}
    assert set(labels) == {item}
    label = labels[item]
    assert (label.reviewer, label.decision, label.category, label.note) == (
        "alice",
        "BLOCK",
        "violence",
        "threat",
    )
    actions = audit_actions(store, item)
    assert ("alice", "claim") in actions and ("bob", "claim_refused") in actions
    assert ("bob", "decide_refused") in actions and actions[-1] == ("alice", "decide")
    with store.connect() as connection:
        assert connection.execute(sa.select(review_leases)).all() == []  # the lease was released
        detail = connection.execute(sa.select(audit.c.detail).where(audit.c.action == "decide")).scalar_one()
    assert detail == {"decision": "BLOCK", "category": "violence", "label_id": label.label_id}

    assert item not in queue_ids(alice)  # it left the queue
    assert alice.post(f"/items/{item}/claim").status_code == 303  # decided: back to the queue
    assert "left the queue" in alice.get("/queue").text
    # And cannot be decided twice, even with a lease.
    assert alice.post(f"/items/{item}/decide", {"decision": "ALLOW"}).status_code == 409


def test_an_expired_lease_may_be_taken_over_and_a_holder_may_release(
    client: Callable[[], Reviewer], tokens: dict[str, str], stored: Stored, store: VerdictStore
) -> None:
    alice, bob, root = client(), client(), client()
    for who, c in (("alice", alice), ("bob", bob), ("root", root)):
        c.login(tokens[who])
    item = stored.top_new
    assert alice.post(f"/items/{item}/claim").status_code == 303
    with store.connect() as connection:
        connection.execute(review_leases.update().values(expires_at=0.0))
        connection.commit()
    assert bob.post(f"/items/{item}/claim").status_code == 303  # alice's lease had expired
    assert alice.post(f"/items/{item}/decide", {"decision": "ALLOW"}).status_code == 409
    # Alice cannot release bob's lease; an admin can.
    alice.post(f"/items/{item}/release")
    assert alice.post(f"/items/{item}/claim").status_code == 409
    assert root.post(f"/items/{item}/release").status_code == 303
    assert alice.post(f"/items/{item}/claim").status_code == 303
    assert ("root", "release") in audit_actions(store, item)


def test_the_queue_pages_by_number_with_the_filter_kept_in_the_session(
    tmp_path: Path, store_path: str, stored: Stored, tokens: dict[str, str]
) -> None:
    size = 2
    pages = [stored.queue_order[i : i + size] for i in range(0, len(stored.queue_order), size)]
    assert len(pages) >= 2
    env = {"MODGATE_CONSOLE_PAGE_SIZE": str(size)}
    tokens_file = tmp_path / "console-tokens.yaml"
    with ConsoleProcess(store_path, tokens_file, log_path=tmp_path / "paged.log", env=env) as console:
        alice = Reviewer(console.url)
        try:
            alice.login(tokens["alice"])
            for number, expected in enumerate(pages, start=1):
                page = alice.get(f"/queue?page={number}")
                assert re.findall(r'data-verdict-id="([0-9a-f]{32})"', page.text) == expected, number
                assert ('rel="next"' in page.text) == (number < len(pages))
                assert ('rel="prev"' in page.text) == (number > 1)
            assert alice.get("/queue?page=0").status_code == 422
        finally:
            alice.close()
