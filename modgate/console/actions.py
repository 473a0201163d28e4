"""What a reviewer does, audited, shared by the pages and the JSON API."""

from __future__ import annotations

from modgate.console import audit, queue
from modgate.console.decisions import DecisionForm, DecisionRefused, decide
from modgate.console.items import ItemView, item_view
from modgate.console.users import User
from modgate.console.web import Console
from modgate.store.labels import ReviewLabel


class NotFound(LookupError):
    pass


def _audit(c: Console, user: User, action: str, verdict_id: str, **detail: object) -> None:
    entry = audit.AuditEntry(user.name, user.role.value, action, verdict_id, dict(detail))
    audit.record(c.store, entry)


def view_item(c: Console, user: User, verdict_id: str, *, revealed: frozenset[int] = frozenset()) -> ItemView:
    record = c.store.get(verdict_id)
    if record is None:
        raise NotFound(f"no stored verdict {verdict_id}")
    view = item_view(
        record, c.store.thumbnails(verdict_id), lease=queue.lease_of(c.store, verdict_id), revealed=revealed
    )
    _audit(c, user, "view", verdict_id)
    return view


def claim(c: Console, user: User, verdict_id: str) -> queue.ClaimResult:
    if c.store.get(verdict_id) is None:
        raise NotFound(f"no stored verdict {verdict_id}")
    if not queue.in_queue(c.store, verdict_id):
        _audit(c, user, "claim_refused", verdict_id, reason="not in the queue")
        return queue.ClaimResult(False, None)
    result = queue.claim(c.store, verdict_id, user.name, lease_s=c.settings.lease_s)
    if result.ok:
        _audit(c, user, "claim", verdict_id, expires_at=result.lease.expires_at if result.lease else 0)
    else:
        holder = result.lease.reviewer if result.lease else ""
        _audit(c, user, "claim_refused", verdict_id, held_by=holder)
    return result


def release(c: Console, user: User, verdict_id: str) -> bool:
    """The holder ends their lease; an admin may end anyone's."""
    lease = queue.lease_of(c.store, verdict_id)
    if lease is None:
        return False
    if lease.reviewer != user.name and not user.is_admin:
        _audit(c, user, "release_refused", verdict_id, held_by=lease.reviewer)
        return False
    ended = queue.release(c.store, verdict_id, None if user.is_admin else user.name)
    if ended:
        _audit(c, user, "release", verdict_id, held_by=lease.reviewer)
    return ended


def reveal(c: Console, user: User, verdict_id: str, frame_index: int) -> None:
    if frame_index not in {t.frame_index for t in c.store.thumbnails(verdict_id)}:
        raise NotFound(f"verdict {verdict_id} keeps no thumbnail of frame {frame_index}")
    _audit(c, user, "reveal", verdict_id, frame_index=frame_index)


def decide_item(c: Console, user: User, verdict_id: str, form: DecisionForm) -> ReviewLabel:
    record = c.store.get(verdict_id)
    if record is None:
        raise NotFound(f"no stored verdict {verdict_id}")
    try:
        valid = form.validated(set(item_view(record, []).block_categories))
        return decide(c.store, verdict_id, reviewer=user.name, role=user.role.value, form=valid)
    except DecisionRefused as exc:
        _audit(c, user, "decide_refused", verdict_id, reason=str(exc)[:120])
        raise
