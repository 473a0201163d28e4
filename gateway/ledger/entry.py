"""One request as the verdict ledger sees it: who asked, under which idempotency key, what."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

from gateway.auth import Caller
from modgate.v1 import moderation_pb2 as pb

ANONYMOUS = "anonymous"  # the caller of every request when the gateway checks no tokens


def caller_name(caller: Caller | None) -> str:
    return caller.name if caller is not None else ANONYMOUS


def request_digest(request: pb.ModerateRequest, *, media_bytes: int) -> str:
    """sha256 of the request without its media bytes (their length stands in for them: hashing
    a 32 MiB upload per call would cost more than the lookup it guards). A reused request_id
    whose digest differs is a different request."""
    header = pb.ModerateRequest()
    for descriptor, value in request.ListFields():
        if descriptor.name == "media":
            continue
        field = getattr(header, descriptor.name)
        if descriptor.is_repeated:
            field.extend(value)
        elif descriptor.message_type is not None:
            field.CopyFrom(value)
        else:
            setattr(header, descriptor.name, value)
    digest = hashlib.sha256(header.SerializeToString(deterministic=True))
    digest.update(media_bytes.to_bytes(8, "big"))
    return digest.hexdigest()


@dataclass(frozen=True)
class LedgerEntry:
    caller: str
    request_id: str  # the caller's, or the one the gateway generated
    idempotent: bool  # the caller chose request_id: duplicates are answered from the store
    digest: str
    content_id: str
    received_at: float  # Unix seconds
    deadline: float  # time.monotonic() by which the reply is due

    @property
    def key(self) -> tuple[str, str]:
        return (self.caller, self.request_id)

    def remaining_s(self) -> float:
        return self.deadline - time.monotonic()
