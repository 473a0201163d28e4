"""The console's FastAPI app: the one place its parts are wired.

ConsoleSettings -> VerdictStore (migrations to head) + UserDirectory (tokens file) +
SessionCodec (session secret) + Jinja2 templates -> routers: login, pages (queue, item,
decide, trace), admin (audit trail, export), api (/api/v1) -> middleware: SecurityHeaders,
AccessLog.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from modgate.console import admin, api, login, pages
from modgate.console.config import ConsoleSettings
from modgate.console.security import AccessLog, SecurityHeaders
from modgate.console.sessions import SessionCodec
from modgate.console.users import UserDirectory
from modgate.console.web import TEMPLATES, Console, LoginRequired, Refused, render
from modgate.store.store import StoreUnavailable, VerdictStore

STATIC = Path(__file__).parent / "static"


def _templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(TEMPLATES))
    templates.env.autoescape = True  # every template, whatever its extension
    templates.env.filters["clock"] = _clock
    templates.env.filters["seconds"] = lambda ms: f"{ms / 1000:.1f}s"
    return templates


def _clock(at: float) -> str:
    import time

    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at))


def create_app(settings: ConsoleSettings | None = None, store: VerdictStore | None = None) -> FastAPI:
    settings = settings or ConsoleSettings()
    app = FastAPI(title="modgate review console", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.console = Console(
        settings=settings,
        store=store or VerdictStore.open(settings.store),
        users=UserDirectory(settings.tokens_file),
        codec=SessionCodec(settings.session_secret.get_secret_value(), settings.session_ttl_s),
        templates=_templates(),
    )
    app.include_router(login.router)
    app.include_router(pages.router)
    app.include_router(admin.router)
    app.include_router(api.router)
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")

    @app.get("/readyz")
    def readyz() -> Response:
        try:
            app.state.console.store.ping()
        except StoreUnavailable:
            return JSONResponse({"ready": False, "reason": "the verdict store does not answer"}, 503)
        return JSONResponse({"ready": True})

    @app.exception_handler(LoginRequired)
    def to_login(request: Request, _exc: LoginRequired) -> Response:
        return RedirectResponse("/login", status_code=303)

    @app.exception_handler(Refused)
    def refused(request: Request, exc: Refused) -> Response:
        return render(request, "error.html", {"message": exc.reason}, status=403)

    @app.exception_handler(StoreUnavailable)
    def store_down(request: Request, _exc: StoreUnavailable) -> Response:
        return JSONResponse({"detail": "the verdict store does not answer; try again shortly"}, 503)

    app.add_middleware(AccessLog)
    app.add_middleware(SecurityHeaders)
    return app
