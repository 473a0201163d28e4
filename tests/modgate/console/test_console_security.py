"""Refusals: unauthenticated (redirect / 401), wrong role (403), form POSTs without or with a
wrong CSRF token or from another site (403); the headers; the cookie's flags; no content in
the console's log or in any URL it sends a browser to."""

from __future__ import annotations

import re
from collections.abc import Callable

import httpx
import sqlalchemy as sa

from modgate.store import VerdictStore
from modgate.store.schema import audit, labels, review_leases
from tests.console_process import ConsoleProcess
from tests.modgate.console.client import Reviewer
from tests.modgate.console.records import CONTENT_WORDS, Stored


def test_unauthenticated_pages_redirect_to_login_and_the_api_answers_401(
    console: ConsoleProcess, stored: Stored
) -> None:
    with httpx.Client(base_url=console.url, follow_redirects=False, trust_env=False) as anonymous:
        for path in (
            "/queue",
            f"/items/{stored.top_old}",
            f"/items/{stored.top_old}/frames/3",
            "/admin/audit",
            "/admin/export/labels.csv",
            f"/traces/{'a' * 32}",
        ):
            response = anonymous.get(path)
            assert (response.status_code, response.headers.get("location")) == (303, "/login"), path
        for path in ("/api/v1/queue", f"/api/v1/items/{stored.top_old}", "/api/v1/labels"):
            response = anonymous.get(path)
            assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer", path
        assert anonymous.get("/api/v1/queue", headers={"authorization": "Bearer wrong"}).status_code == 401
        # A forged cookie is no session.
        anonymous.cookies.set("modgate_console", "eyJ1IjoiYWRtaW4ifQ.deadbeef")
        assert anonymous.get("/queue").status_code == 303


def test_a_wrong_token_is_refused_and_audited(
    client: Callable[[], Reviewer], store: VerdictStore, console: ConsoleProcess
) -> None:
    mallory = client()
    mallory.get("/login")
    response = mallory.post("/login", {"token": "not-a-token"})
    assert response.status_code == 401 and "unknown token" in response.text
    assert mallory.get("/queue").status_code == 303
    with store.connect() as connection:
        assert connection.execute(sa.select(audit.c.action)).scalars().all() == ["login_refused"]


def test_a_reviewer_is_refused_admin_pages(
    client: Callable[[], Reviewer], tokens: dict[str, str], stored: Stored
) -> None:
    alice = client()
    alice.login(tokens["alice"])
    for path in (
        "/admin/audit",
        f"/admin/audit/{stored.top_old}",
        "/admin/export/labels.jsonl",
        "/admin/export/labels.csv",
    ):
        assert alice.get(path).status_code == 403, path
    assert "Audit trail" not in alice.get("/queue").text  # no admin links either
    root = client()
    root.login(tokens["root"])
    assert root.get("/admin/audit").status_code == 200


def test_form_posts_without_the_csrf_token_or_from_another_site_are_refused(
    client: Callable[[], Reviewer], tokens: dict[str, str], stored: Stored, store: VerdictStore
) -> None:
    alice = client()
    alice.login(tokens["alice"])
    claim = f"/items/{stored.top_old}/claim"
    attempts = {
        "no csrf token": alice.post(claim, csrf=""),
        "wrong csrf token": alice.post(claim, csrf="x" * 32),
        "cross-site origin": alice.post(claim, origin="https://evil.example"),
        "no origin or referer": alice.post(claim, origin=""),
    }
    cross_referer = alice.http.post(
        claim, data={"csrf_token": alice.csrf}, headers={"referer": "https://evil.example/page"}
    )
    assert cross_referer.status_code == 403
    # Under Referrer-Policy: no-referrer browsers send Origin: null; then Sec-Fetch-Site decides.
    null_cross = alice.http.post(
        claim, data={"csrf_token": alice.csrf}, headers={"origin": "null", "sec-fetch-site": "cross-site"}
    )
    null_bare = alice.http.post(claim, data={"csrf_token": alice.csrf}, headers={"origin": "null"})
    assert (null_cross.status_code, null_bare.status_code) == (403, 403)
    assert {name: r.status_code for name, r in attempts.items()} == dict.fromkeys(attempts, 403)
    # Another user's CSRF token is no good either (it is per session).
    bob = client()
    bob.login(tokens["bob"])
    assert alice.post(claim, csrf=bob.csrf).status_code == 403
    assert alice.post("/login", {"token": tokens["root"]}, origin="https://evil.example").status_code == 403
    with store.connect() as connection:
        assert connection.execute(sa.select(review_leases)).all() == []
        assert connection.execute(sa.select(labels)).all() == []
        refused = connection.execute(
            sa.select(audit.c.actor).where(audit.c.action == "post_refused")
        ).scalars()
        assert list(refused).count("alice") == 9
    # The same POST from the console's own page works (also as a browser sends it there).
    same = alice.http.post(
        claim, data={"csrf_token": alice.csrf}, headers={"origin": "null", "sec-fetch-site": "same-origin"}
    )
    assert same.status_code == 303


def test_headers_cookie_and_no_content_in_logs_or_urls(
    client: Callable[[], Reviewer], tokens: dict[str, str], stored: Stored, console: ConsoleProcess
) -> None:
    alice = client()
    login = alice.http.get("/login")
    cookie = login.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "secure" not in cookie
    alice.login(tokens["alice"])
    alice.post(f"/items/{stored.top_old}/claim")
    responses = [
        alice.get("/queue"),
        alice.get(f"/items/{stored.top_old}"),
        alice.get(f"/items/{stored.top_old}/frames/3"),
        alice.post(f"/items/{stored.top_old}/reveal", {"frame_index": "3"}),
        alice.post(
            f"/items/{stored.top_old}/decide",
            {"decision": "BLOCK", "category": "violence", "note": "zorblat"},
        ),
    ]
    for response in responses:
        csp = response.headers["content-security-policy"]
        assert (
            "default-src 'self'" in csp and "frame-ancestors 'none'" in csp and "img-src 'self' data:" in csp
        )
        assert "unsafe-inline" not in csp
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert response.headers["cache-control"] == "no-store"
        assert "?" not in response.headers.get("location", "")
    item_html = responses[1].text
    assert "<script" not in item_html and "style=" not in item_html
    links = re.findall(r'(?:href|action|src)="([^"]*)"', item_html)
    assert links and not [link for link in links if "?" in link]
    static = alice.get("/static/console.css")
    assert static.status_code == 200 and static.headers.get("cache-control") != "no-store"

    console.stop()
    log = console.log()
    assert f"GET /items/{stored.top_old} 200" in log  # it does log requests...
    for secret in (*CONTENT_WORDS, "threat", tokens["alice"], alice.csrf):
        assert secret not in log  # ...but never content, notes, tokens or CSRF tokens
