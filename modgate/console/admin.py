"""Admin pages: the audit trail and the labels export."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import Response, StreamingResponse

from modgate.console import audit, export
from modgate.console.users import User
from modgate.console.web import admin_user, console, render

router = APIRouter(prefix="/admin")
AdminUser = Annotated[User, Depends(admin_user)]


@router.get("/audit")
def audit_page(request: Request, user: AdminUser) -> Response:
    return render(request, "audit.html", {"entries": audit.recent(console(request).store), "verdict_id": ""})


@router.get("/audit/{verdict_id}")
def audit_of_item(
    request: Request, user: AdminUser, verdict_id: Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")]
) -> Response:
    entries = audit.recent(console(request).store, verdict_id=verdict_id)
    return render(request, "audit.html", {"entries": entries, "verdict_id": verdict_id})


def export_response(request: Request, user: User, kind: str) -> Response:
    c = console(request)
    audit.record(c.store, audit.AuditEntry(user.name, user.role.value, "export", "", {"format": kind}))
    rows = export.label_rows(c.store)
    if kind == "csv":
        body, media = export.csv_lines(rows), "text/csv; charset=utf-8"
    else:
        body, media = export.jsonl(rows), "application/x-ndjson"
    return StreamingResponse(
        body, media_type=media, headers={"content-disposition": f'attachment; filename="labels.{kind}"'}
    )


@router.get("/export/labels.jsonl")
def export_jsonl(request: Request, user: AdminUser) -> Response:
    return export_response(request, user, "jsonl")


@router.get("/export/labels.csv")
def export_csv(request: Request, user: AdminUser) -> Response:
    return export_response(request, user, "csv")
