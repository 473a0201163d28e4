"""Login (a form posting the token) and logout. The token is never logged or kept: the session
names the user by the token's digest."""

from __future__ import annotations

from dataclasses import replace

from fastapi import APIRouter, Request
from fastapi.responses import Response

from modgate.console import audit
from modgate.console.web import checked_form, console, current_user, redirect, render, set_session

router = APIRouter()


@router.get("/login")
def login_form(request: Request) -> Response:
    if current_user(request) is not None:
        return redirect(request, "/queue")
    return render(request, "login.html", {"no_users": not console(request).users.users()})


@router.post("/login")
async def login(request: Request) -> Response:
    fields = await checked_form(request)
    c = console(request)
    user = c.users.authenticate(fields.get("token", ""))
    if user is None:
        audit.record(c.store, audit.AuditEntry(actor="-", role="", action="login_refused"))
        return render(
            request, "login.html", {"error": "unknown token", "no_users": not c.users.users()}, status=401
        )
    # A new session (and CSRF token) on login: a session planted before it is worth nothing.
    set_session(request, c.codec.new(user.digest))
    audit.record(c.store, audit.AuditEntry(actor=user.name, role=user.role.value, action="login"))
    return redirect(request, "/queue")


@router.post("/logout")
async def logout(request: Request) -> Response:
    await checked_form(request)
    c = console(request)
    user = current_user(request)
    if user is not None:
        audit.record(c.store, audit.AuditEntry(actor=user.name, role=user.role.value, action="logout"))
    set_session(request, replace(c.codec.new(), flash="logged out"))
    return redirect(request, "/login")
