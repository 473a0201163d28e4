"""What every console route shares: the console's state, who is asking (session cookie for
pages, bearer token for the API), the CSRF + same-origin check of form POSTs, rendering with
the session cookie set."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from fastapi import HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from modgate.console import audit
from modgate.console.config import ConsoleSettings
from modgate.console.sessions import COOKIE, CSRF_FIELD, Session, SessionCodec, csrf_ok, same_origin
from modgate.console.users import User, UserDirectory
from modgate.store.store import VerdictStore

log = logging.getLogger("modgate.console")
TEMPLATES = Path(__file__).parent / "templates"


@dataclass
class Console:
    settings: ConsoleSettings
    store: VerdictStore
    users: UserDirectory
    codec: SessionCodec
    templates: Jinja2Templates


class LoginRequired(Exception):
    """A page asked for without a (valid) session: the handler redirects to the login form."""


class Refused(Exception):
    """A forbidden form POST or page: 403 with the reason (no detail an attacker could use)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def console(request: Request) -> Console:
    return request.app.state.console


def session_of(request: Request) -> Session:
    """The request's session (decoded once), a fresh anonymous one without a valid cookie."""
    cached = getattr(request.state, "session", None)
    if cached is None:
        c = console(request)
        cached = c.codec.decode(request.cookies.get(COOKIE)) or c.codec.new()
        request.state.session = cached
    return cached


def set_session(request: Request, session: Session) -> None:
    request.state.session = session


def current_user(request: Request) -> User | None:
    session = session_of(request)
    if not session.logged_in:
        return None
    return console(request).users.by_digest(session.user_digest)


def page_user(request: Request) -> User:
    """FastAPI dependency of every page: the logged-in user, else to the login form."""
    user = current_user(request)
    if user is None:
        raise LoginRequired()
    return user


def admin_user(request: Request) -> User:
    user = page_user(request)
    if not user.is_admin:
        audit_refusal(request, user, "admin_refused")
        raise Refused("this page is for admins")
    return user


def api_user(request: Request) -> User:
    """The API's caller: `Authorization: Bearer <token>` (cookies are not accepted: no CSRF)."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    user = console(request).users.authenticate(token) if scheme.lower() == "bearer" else None
    if user is None:
        raise HTTPException(
            401, "send Authorization: Bearer <token> (a console token)", {"WWW-Authenticate": "Bearer"}
        )
    return user


def api_admin(request: Request) -> User:
    user = api_user(request)
    if not user.is_admin:
        raise HTTPException(403, "admins only")
    return user


def expected_origin(request: Request) -> str:
    configured = console(request).settings.public_origin.rstrip("/")
    return configured or f"{request.url.scheme}://{request.headers.get('host', '')}"


async def checked_form(request: Request) -> dict[str, str]:
    """A form POST's fields, after its CSRF token and its origin were checked."""
    form = await request.form()
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    session = session_of(request)
    headers = request.headers
    origin_ok = same_origin(
        headers.get("origin"), headers.get("sec-fetch-site"), headers.get("referer"), expected_origin(request)
    )
    if not origin_ok or not csrf_ok(session, fields.get(CSRF_FIELD)):
        audit_refusal(request, current_user(request), "post_refused", {"origin_ok": origin_ok})
        raise Refused("this form did not come from this console's page (reload the page and try again)")
    return fields


def audit_refusal(
    request: Request, user: User | None, action: str, detail: dict[str, Any] | None = None
) -> None:
    audit.record(
        console(request).store,
        audit.AuditEntry(
            actor=user.name if user else "-",
            role=user.role.value if user else "",
            action=action,
            verdict_id=str(request.path_params.get("verdict_id", ""))[:32],
            detail={"path": request.url.path[:200], **(detail or {})},
        ),
    )


def render(
    request: Request, template: str, context: dict[str, Any] | None = None, *, status: int = 200
) -> Response:
    session = session_of(request)
    flash = session.flash
    if flash:
        session = replace(session, flash="")
        set_session(request, session)
    values = {
        "user": current_user(request),
        "csrf_token": session.csrf,
        "csrf_field": CSRF_FIELD,
        "flash": flash,
        **(context or {}),
    }
    response = console(request).templates.TemplateResponse(request, template, values, status_code=status)
    write_cookie(request, response)
    return response


def redirect(request: Request, url: str, *, flash: str = "") -> Response:
    if flash:
        set_session(request, replace(session_of(request), flash=flash))
    response = RedirectResponse(url, status_code=303)
    write_cookie(request, response)
    return response


def write_cookie(request: Request, response: Response) -> None:
    c = console(request)
    response.set_cookie(
        COOKIE,
        c.codec.encode(session_of(request)),
        max_age=int(c.settings.session_ttl_s),
        httponly=True,
        samesite="strict",
        secure=c.settings.secure_cookies,
        path="/",
    )
