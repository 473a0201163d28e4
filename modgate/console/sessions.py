"""Signed session cookies, CSRF tokens and the same-origin check of every form POST.

The session lives in the cookie (nothing server-side): base64url(JSON) + "." + HMAC-SHA256 of
it under the console's session secret. It holds who logged in (the user's token digest, so
removing the user from the tokens file ends the session), a random CSRF token that every form
carries back, the expiry, the queue filter and the thumbnails revealed on the item being
worked. Never content. An anonymous session (no user) carries the login form's CSRF token.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

COOKIE = "modgate_console"
CSRF_FIELD = "csrf_token"


@dataclass(frozen=True)
class Session:
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    expires_at: float = 0.0
    user_digest: str = ""  # "" = not logged in
    queue_filter: dict[str, Any] = field(default_factory=dict)
    revealed: tuple[str, tuple[int, ...]] = ("", ())  # (verdict_id, frame indexes)
    flash: str = ""

    @property
    def logged_in(self) -> bool:
        return bool(self.user_digest)

    def revealed_frames(self, verdict_id: str) -> frozenset[int]:
        return frozenset(self.revealed[1]) if self.revealed[0] == verdict_id else frozenset()

    def with_revealed(self, verdict_id: str, frame_index: int) -> Session:
        return replace(
            self, revealed=(verdict_id, (*sorted(self.revealed_frames(verdict_id) | {frame_index}),))
        )


class SessionCodec:
    def __init__(self, secret: str, ttl_s: float) -> None:
        self._key = hashlib.sha256(b"modgate-console-session\0" + secret.encode("utf-8")).digest()
        self.ttl_s = ttl_s

    def new(self, user_digest: str = "") -> Session:
        """A fresh session (a new CSRF token: logging in never keeps the anonymous one)."""
        return Session(expires_at=time.time() + self.ttl_s, user_digest=user_digest)

    def encode(self, session: Session) -> str:
        payload = {
            "c": session.csrf,
            "e": session.expires_at,
            "u": session.user_digest,
            "f": session.queue_filter,
            "r": [session.revealed[0], list(session.revealed[1])],
            "m": session.flash,
        }
        body = base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).rstrip(b"=")
        return f"{body.decode()}.{self._sign(body)}"

    def decode(self, cookie: str | None, now: float | None = None) -> Session | None:
        """The session in a cookie, or None when absent, tampered with or expired."""
        if not cookie or len(cookie) > 4096 or "." not in cookie:
            return None
        body, _, signature = cookie.rpartition(".")
        if not hmac.compare_digest(self._sign(body.encode()), signature):
            return None
        try:
            payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
            session = Session(
                csrf=str(payload["c"]),
                expires_at=float(payload["e"]),
                user_digest=str(payload["u"]),
                queue_filter=dict(payload["f"]),
                revealed=(str(payload["r"][0]), tuple(int(i) for i in payload["r"][1])),
                flash=str(payload.get("m", "")),
            )
        except (ValueError, KeyError, TypeError, IndexError, binascii.Error):
            return None
        if session.expires_at < (time.time() if now is None else now):
            return None
        return session

    def _sign(self, body: bytes) -> str:
        return hmac.new(self._key, body, hashlib.sha256).hexdigest()


def csrf_ok(session: Session | None, presented: str | None) -> bool:
    return session is not None and bool(presented) and hmac.compare_digest(session.csrf, str(presented))


def same_origin(origin: str | None, fetch_site: str | None, referer: str | None, expected: str) -> bool:
    """A form POST came from our own pages. Its Origin when the browser names one; under
    Referrer-Policy: no-referrer a browser sends `Origin: null` and no Referer, so then its
    Sec-Fetch-Site (which no page can forge) must say same-origin; without either, the
    Referer's origin. None of them: refused (every current browser sends one)."""
    if origin and origin != "null":
        return origin.rstrip("/") == expected
    if fetch_site:
        return fetch_site == "same-origin"
    if referer:
        parts = urlsplit(referer)
        return f"{parts.scheme}://{parts.netloc}" == expected
    return False
