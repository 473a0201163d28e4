"""The reviewer's pages: the queue, claiming, the item, revealing a frame, deciding, the trace.

Every state change is a form POST (CSRF token + same origin, web.checked_form) answered with a
redirect; nothing a reviewer types travels in a URL (the queue filter is kept in the session).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response

from modgate.console import actions, queue
from modgate.console.decisions import DecisionForm, DecisionRefused
from modgate.console.trace import waterfall
from modgate.console.users import User
from modgate.console.web import (
    checked_form,
    console,
    page_user,
    redirect,
    render,
    session_of,
    set_session,
)

router = APIRouter()
VerdictId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")]
PageUser = Annotated[User, Depends(page_user)]


@router.get("/")
def home(request: Request) -> Response:
    return redirect(request, "/queue")


@router.get("/queue")
def queue_page(
    request: Request, user: PageUser, page: Annotated[int, Query(ge=1, le=10_000)] = 1
) -> Response:
    """The queue, `page` by page (a page number is all the URL holds: the filter stays in the
    session)."""
    c = console(request)
    flt = queue.QueueFilter.from_dict(session_of(request).queue_filter)
    size = c.settings.page_size
    entries = queue.queue_page(c.store, flt, limit=size, skip=(page - 1) * size)
    context = {"entries": entries[:size], "filter": flt, "me": user.name, "page": page}
    return render(request, "queue.html", {**context, "more": len(entries) > size})


@router.post("/queue/filter")
async def set_filter(request: Request, user: PageUser) -> Response:
    fields = await checked_form(request)
    if "clear" in fields:
        fields = {}
    try:
        flt = queue.QueueFilter.from_dict(fields)
    except ValueError as exc:
        return redirect(request, "/queue", flash=f"filter not applied: {exc}")
    set_session(request, replace(session_of(request), queue_filter=flt.to_dict()))
    return redirect(request, "/queue")


@router.post("/items/{verdict_id}/claim")
async def claim(request: Request, user: PageUser, verdict_id: VerdictId) -> Response:
    await checked_form(request)
    try:
        result = actions.claim(console(request), user, verdict_id)
    except actions.NotFound:
        return render(request, "error.html", {"message": "no such item"}, status=404)
    if result.ok:
        return redirect(request, f"/items/{verdict_id}")
    if result.lease is None:
        return redirect(request, "/queue", flash="that item has left the queue (decided already)")
    return render(
        request,
        "error.html",
        {"message": f"{result.lease.reviewer} is working this item; it stays theirs until their lease ends"},
        status=409,
    )


@router.get("/items/{verdict_id}")
def item_page(request: Request, user: PageUser, verdict_id: VerdictId) -> Response:
    revealed = session_of(request).revealed_frames(verdict_id)
    try:
        item = actions.view_item(console(request), user, verdict_id, revealed=revealed)
    except actions.NotFound:
        return render(request, "error.html", {"message": "no such item"}, status=404)
    mine = item.lease is not None and item.lease.reviewer == user.name and item.lease.active()
    return render(request, "item.html", {"item": item, "mine": mine})


@router.get("/items/{verdict_id}/frames/{frame_index}")
def frame(request: Request, user: PageUser, verdict_id: VerdictId, frame_index: int) -> Response:
    for thumb in console(request).store.thumbnails(verdict_id):
        if thumb.frame_index == frame_index:
            return Response(thumb.jpeg, media_type="image/jpeg")
    return Response(status_code=404)


@router.post("/items/{verdict_id}/reveal")
async def reveal(request: Request, user: PageUser, verdict_id: VerdictId) -> Response:
    fields = await checked_form(request)
    try:
        frame_index = int(fields.get("frame_index", ""))
        actions.reveal(console(request), user, verdict_id, frame_index)
    except (ValueError, actions.NotFound):
        return render(request, "error.html", {"message": "no such frame"}, status=404)
    set_session(request, session_of(request).with_revealed(verdict_id, frame_index))
    return redirect(request, f"/items/{verdict_id}#frame-{frame_index}")


@router.post("/items/{verdict_id}/release")
async def release(request: Request, user: PageUser, verdict_id: VerdictId) -> Response:
    await checked_form(request)
    ended = actions.release(console(request), user, verdict_id)
    return redirect(request, "/queue", flash="lease released" if ended else "no lease of yours to release")


@router.post("/items/{verdict_id}/decide")
async def decide(request: Request, user: PageUser, verdict_id: VerdictId) -> Response:
    fields = await checked_form(request)
    form = DecisionForm(fields.get("decision", ""), fields.get("category", ""), fields.get("note", ""))
    try:
        label = actions.decide_item(console(request), user, verdict_id, form)
    except actions.NotFound:
        return render(request, "error.html", {"message": "no such item"}, status=404)
    except DecisionRefused as exc:
        return render(request, "error.html", {"message": str(exc)}, status=409)
    what = label.decision + (f" ({label.category})" if label.category else "")
    return redirect(request, "/queue", flash=f"decided {what}; the item left the queue")


@router.get("/traces/{trace_id}")
def trace_page(request: Request, user: PageUser, trace_id: Annotated[str, Path(max_length=64)]) -> Response:
    return render(request, "trace.html", {"trace": waterfall(console(request).settings.trace_db, trace_id)})
