"""The JSON API (/api/v1): the pages' data and actions for integration, authenticated by
`Authorization: Bearer <console token>` (never by the session cookie, so no CSRF is possible).

    GET  /api/v1/queue                     the queue (no filter)
    POST /api/v1/queue                     {category, policy, variant, min_age_h, max_age_h}
    GET  /api/v1/items/{id}                the item (thumbnails at .../frames/{frame_index})
    GET  /api/v1/items/{id}/frames/{n}     a thumbnail (image/jpeg)
    POST /api/v1/items/{id}/claim          200 with the lease | 409 with the holder's
    POST /api/v1/items/{id}/release
    POST /api/v1/items/{id}/decide         {decision: ALLOW|BLOCK, category, note}
    GET  /api/v1/labels                    admins: the labels as JSON lines
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, Field

from modgate.console import actions, audit, export, queue
from modgate.console.decisions import DecisionForm, DecisionRefused
from modgate.console.users import User
from modgate.console.web import api_admin, api_user, console

router = APIRouter(prefix="/api/v1")
VerdictId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")]
ApiUser = Annotated[User, Depends(api_user)]


class FilterBody(BaseModel):
    category: str = Field(default="", max_length=64)
    policy: str = Field(default="", max_length=64)
    variant: str = Field(default="", max_length=32)
    min_age_h: float | None = Field(default=None, ge=0)
    max_age_h: float | None = Field(default=None, ge=0)


class DecideBody(BaseModel):
    decision: str = Field(max_length=16)
    category: str = Field(default="", max_length=64)
    note: str = Field(default="", max_length=2000)


def _entry_json(e: queue.QueueEntry) -> dict[str, Any]:
    return {
        "verdict_id": e.verdict_id,
        "decided_at": e.decided_at,
        "risk": e.risk,
        "policy": e.policy,
        "categories": [{"category": name, "score": score} for name, score in e.categories],
        "variants": list(e.variants),
        "lease": None if e.lease is None else dict(e.lease.__dict__),
    }


def _queue(request: Request, flt: queue.QueueFilter) -> dict[str, Any]:
    c = console(request)
    size = c.settings.page_size
    entries = queue.queue_page(c.store, flt, limit=size)
    return {
        "filter": flt.to_dict(),
        "items": [_entry_json(e) for e in entries[:size]],
        "more": len(entries) > size,
    }


@router.get("/queue")
def get_queue(request: Request, user: ApiUser) -> dict[str, Any]:
    return _queue(request, queue.QueueFilter())


@router.post("/queue")
def filtered_queue(request: Request, user: ApiUser, body: FilterBody) -> dict[str, Any]:
    return _queue(request, queue.QueueFilter(**body.model_dump()))


@router.get("/items/{verdict_id}")
def get_item(request: Request, user: ApiUser, verdict_id: VerdictId) -> dict[str, Any]:
    try:
        return actions.view_item(console(request), user, verdict_id).to_json()
    except actions.NotFound as exc:
        raise HTTPException(404, str(exc)) from None


@router.get("/items/{verdict_id}/frames/{frame_index}")
def get_frame(request: Request, user: ApiUser, verdict_id: VerdictId, frame_index: int) -> Response:
    for thumb in console(request).store.thumbnails(verdict_id):
        if thumb.frame_index == frame_index:
            return Response(thumb.jpeg, media_type="image/jpeg")
    raise HTTPException(404, f"verdict {verdict_id} keeps no thumbnail of frame {frame_index}")


@router.post("/items/{verdict_id}/claim")
def claim(request: Request, user: ApiUser, verdict_id: VerdictId) -> Response:
    try:
        result = actions.claim(console(request), user, verdict_id)
    except actions.NotFound as exc:
        raise HTTPException(404, str(exc)) from None
    lease = None if result.lease is None else dict(result.lease.__dict__)
    if result.ok:
        return JSONResponse({"claimed": True, "lease": lease})
    reason = "held by another reviewer" if lease else "not in the queue (decided already, or not REVIEW)"
    return JSONResponse({"claimed": False, "lease": lease, "detail": reason}, status_code=409)


@router.post("/items/{verdict_id}/release")
def release(request: Request, user: ApiUser, verdict_id: VerdictId) -> dict[str, Any]:
    return {"released": actions.release(console(request), user, verdict_id)}


@router.post("/items/{verdict_id}/decide")
def decide(request: Request, user: ApiUser, verdict_id: VerdictId, body: DecideBody) -> dict[str, Any]:
    try:
        label = actions.decide_item(console(request), user, verdict_id, DecisionForm(**body.model_dump()))
    except actions.NotFound as exc:
        raise HTTPException(404, str(exc)) from None
    except DecisionRefused as exc:
        raise HTTPException(409, str(exc)) from None
    return {"label": dict(label.__dict__)}


@router.get("/labels")
def labels(request: Request, user: Annotated[User, Depends(api_admin)]) -> Response:
    c = console(request)
    audit.record(c.store, audit.AuditEntry(user.name, user.role.value, "export", "", {"format": "api"}))
    return StreamingResponse(export.jsonl(export.label_rows(c.store)), media_type="application/x-ndjson")
