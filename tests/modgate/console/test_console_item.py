"""The item page and the trace page: scores, evidence marks at their times, highlighted
transcript and on-screen text, blurred thumbnails revealed (audited), versions, the waterfall."""

from __future__ import annotations

import re
from collections.abc import Callable

import sqlalchemy as sa

from modgate.store import VerdictStore
from modgate.store.schema import audit
from tests.modgate.console.client import Reviewer
from tests.modgate.console.records import DURATION_MS, ON_SCREEN, TRACE_ID, Stored, jpeg


def marks(html: str) -> list[tuple[str, float, int, int]]:
    found = re.findall(
        r'<rect class="mark mark-(\w+)" x="([\d.]+)".*?data-start-ms="(\d+)"\s+data-end-ms="(\d+)"',
        html,
        re.S,
    )
    return [(m, float(x), int(s), int(e)) for m, x, s, e in found]


def test_item_page_shows_scores_marks_highlights_frames_and_versions(
    client: Callable[[], Reviewer], tokens: dict[str, str], stored: Stored
) -> None:
    alice = client()
    alice.login(tokens["alice"])
    alice.post(f"/items/{stored.top_old}/claim")
    page = alice.get(f"/items/{stored.top_old}")
    assert page.status_code == 200
    html = page.text
    assert 'class="decision decision-REVIEW">REVIEW' in html
    assert 'data-category="violence"' in html and "0.800" in html
    # Marks at start_ms / duration of the 1000-unit axis, on their modality's lane; the untimed
    # title evidence has none.
    assert marks(html) == [
        ("AUDIO", 2000 / DURATION_MS * 1000, 2000, 4000),
        ("VISUAL", 6000 / DURATION_MS * 1000, 6000, 6500),
        ("VISUAL", 8000 / DURATION_MS * 1000, 8000, 9000),
    ]
    assert "zorblat I will <mark>kill you</mark> tomorrow" in html
    assert f"<mark>{ON_SCREEN}</mark>" in html
    assert html.count("<mark>") == 2
    # Frames blurred until revealed; served by their own route.
    assert re.findall(r'<figure id="frame-(\d+)" class="frame (\w+)"', html) == [
        ("3", "blurred"),
        ("7", "blurred"),
    ]
    frame = alice.get(f"/items/{stored.top_old}/frames/3")
    assert frame.status_code == 200 and frame.headers["content-type"] == "image/jpeg"
    assert frame.content == jpeg((200, 30, 30))
    assert alice.get(f"/items/{stored.top_old}/frames/4").status_code == 404
    assert 'id="greyscale"' in html
    # Versions and the trace link.
    assert "ViT-B-32" in html and "whisper-tiny.en" in html and ">canary<" not in html
    assert "<b>default</b> 7" in html
    assert f'href="/traces/{TRACE_ID}"' in html


def test_reveal_is_a_checked_post_and_audited(
    client: Callable[[], Reviewer], tokens: dict[str, str], stored: Stored, store: VerdictStore
) -> None:
    alice = client()
    alice.login(tokens["alice"])
    item = stored.top_old
    alice.get(f"/items/{item}")
    response = alice.post(f"/items/{item}/reveal", {"frame_index": "3"})
    assert response.status_code == 303 and response.headers["location"] == f"/items/{item}#frame-3"
    html = alice.get(f"/items/{item}").text
    assert re.findall(r'<figure id="frame-(\d+)" class="frame (\w+)"', html) == [
        ("3", "revealed"),
        ("7", "blurred"),
    ]
    assert alice.post(f"/items/{item}/reveal", {"frame_index": "99"}).status_code == 404
    with store.connect() as connection:
        rows = connection.execute(
            sa.select(audit.c.actor, audit.c.detail).where(audit.c.action == "reveal")
        ).all()
    assert [(r.actor, r.detail) for r in rows] == [("alice", {"frame_index": 3})]
    # Another item's frames stay blurred.
    assert (
        "revealed"
        not in alice.get(f"/items/{stored.top_new}").text.split("Evidence frames")[1].split("</section>")[0]
    )


def test_trace_page_renders_the_waterfall_from_the_trace_store(
    client: Callable[[], Reviewer], tokens: dict[str, str]
) -> None:
    alice = client()
    alice.login(tokens["alice"])
    html = alice.get(f"/traces/{TRACE_ID}").text
    rows = re.findall(r'<tr class="span-row">.*?<rect x="([\d.]+)" y="0" width="([\d.]+)"', html, re.S)
    assert [(float(x), float(w)) for x, w in rows] == [(0.0, 1000.0), (250.0, 500.0)]
    assert "modgate.v1.Moderation/Moderate" in html and "speech.transcribe" in html
    assert "decision=REVIEW" in html and "400.0 ms" in html
    assert "no spans" in alice.get("/traces/" + "f" * 32).text
    assert "not a trace id" in alice.get("/traces/nothex").text
