"""The console in real headless Chromium (Selenium): log in, open a REVIEW item, see its
evidence marks at their times, reveal a thumbnail, decide BLOCK with a category; the label and
the audit entry are in the store; a second reviewer cannot claim the item. Screenshots go to
$MODGATE_TEST_ARTIFACTS/console (else a temporary folder)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from modgate.store import VerdictStore
from modgate.store.labels import labelled_verdicts
from modgate.store.schema import audit
from tests import console_browser as browser
from tests.console_process import ConsoleProcess
from tests.modgate.console.records import Stored

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(browser.browser_missing() is not None, reason=str(browser.browser_missing())),
]


def test_a_reviewer_blocks_an_item_in_chromium(
    console: ConsoleProcess, tokens: dict[str, str], stored: Stored, store: VerdictStore
) -> None:
    artifacts = browser.artifacts_dir("console")
    with browser.chromium(artifacts) as alice, browser.chromium(artifacts) as bob:
        browser.login(alice, console.url, tokens["alice"])
        assert browser.queue_ids(alice) == stored.queue_order
        browser.screenshot(alice, artifacts, "queue")

        verdict_id = browser.open_first_item(alice)
        assert verdict_id == stored.top_old
        marks = browser.timeline_marks(alice)
        assert [(m["modality"], m["start_ms"], m["end_ms"], m["percent"]) for m in marks] == [
            ("AUDIO", 2000, 4000, 20.0),
            ("VISUAL", 6000, 6500, 60.0),
            ("VISUAL", 8000, 9000, 80.0),
        ]
        assert all(m["shown"] for m in marks)
        assert "blur" in browser.thumbnail_filter(alice, 3)
        browser.screenshot(alice, artifacts, "item-blurred")

        browser.reveal_thumbnail(alice, 3)
        assert "blur" not in browser.thumbnail_filter(alice, 3)
        assert "blur" in browser.thumbnail_filter(alice, 7)
        browser.toggle_greyscale(alice)
        assert "grayscale" in browser.thumbnail_filter(alice, 3)
        browser.toggle_greyscale(alice)
        browser.screenshot(alice, artifacts, "item")

        # A second reviewer, in a browser of their own, cannot claim it meanwhile.
        browser.login(bob, console.url, tokens["bob"])
        from selenium.webdriver.common.by import By

        row = bob.find_element(By.CSS_SELECTOR, f'tr.entry[data-verdict-id="{verdict_id}"]')
        assert "alice until" in row.text and not row.find_elements(By.CSS_SELECTOR, "button.claim")
        bob.get(f"{console.url}/items/{verdict_id}")
        assert "alice is working this item" in bob.page_source
        assert not bob.find_elements(By.ID, "decide-form")

        browser.decide(alice, "BLOCK", category="violence", note="credible threat")
        assert verdict_id not in browser.queue_ids(alice)
        browser.screenshot(alice, artifacts, "queue-after")

    [labelled] = [lv for lv in labelled_verdicts(store) if lv.label.verdict_id == verdict_id]
    assert (labelled.label.reviewer, labelled.label.decision, labelled.label.category) == (
        "alice",
        "BLOCK",
        "violence",
    )
    with store.connect() as connection:
        actions = connection.execute(
            sa.select(audit.c.actor, audit.c.action)
            .where(audit.c.verdict_id == verdict_id)
            .order_by(audit.c.at)
        ).all()
    assert [tuple(a) for a in actions if a.action in ("claim", "reveal", "decide")] == [
        ("alice", "claim"),
        ("alice", "reveal"),
        ("alice", "decide"),
    ]
    assert ("bob", "view") in [tuple(a) for a in actions]
    for name in ("queue", "item-blurred", "item", "queue-after"):
        assert (artifacts / f"{name}.png").stat().st_size > 5000
