"""Typed gateway errors, each carrying the gRPC status it maps to.

Business code raises these; the server turns them into a status with `grpc_status()` (the one
place that mapping happens). They cross the split worker's process boundary, so they pickle
with their attributes intact.

Messages say what happened and what the caller can do about it.
"""

from __future__ import annotations

from typing import Any

import grpc


class GatewayError(Exception):
    """Base class: a request the gateway refuses, with the status code it answers with."""

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = details

    def __reduce__(self) -> tuple[Any, ...]:
        # Exceptions pickle as cls(*args) by default, which would drop keyword details.
        return (_rebuild, (type(self), self.message, self.details))

    def __str__(self) -> str:
        return self.message


def _rebuild(cls: type[GatewayError], message: str, details: dict[str, Any]) -> GatewayError:
    return cls(message, **details)


# --- INVALID_ARGUMENT ---------------------------------------------------------------------


class InvalidArgument(GatewayError):
    """A bad request field or unusable media."""

    code = grpc.StatusCode.INVALID_ARGUMENT


class BadField(InvalidArgument):
    """A request field fails validation; `details["field"]` names it."""


class EmptyMedia(InvalidArgument):
    """Nothing to moderate: zero media bytes where media was expected, or no media and no text."""


class UnsupportedMedia(InvalidArgument):
    """Bytes that are not one of the supported containers (mp4, mov, webm, mkv)."""


class UndecodableMedia(InvalidArgument):
    """A supported container whose content cannot be decoded (corrupt or truncated)."""


class TruncatedMedia(UndecodableMedia):
    """The container declares more content than the bytes hold."""


class NoUsableStream(InvalidArgument):
    """The container opened, but no audio, video or subtitle stream could be decoded."""


class BadMediaUri(InvalidArgument):
    """A media_uri that is malformed, outside the media root, or does not exist."""


# --- RESOURCE_EXHAUSTED -------------------------------------------------------------------


class LimitExceeded(GatewayError):
    """Over a configured limit; `details` carries `limit`, `value` and `maximum`."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class MediaTooLarge(LimitExceeded):
    """More bytes than the unary, stream or URI limit allows."""


class MediaTooLong(LimitExceeded):
    """Longer than max_duration_s."""


class ResolutionTooHigh(LimitExceeded):
    """Video wider, taller or with more pixels than the limits allow."""


class TooManyStreams(LimitExceeded):
    """More streams in the container than max_streams."""


class TooManySubtitleCues(LimitExceeded):
    """More subtitle cues or subtitle text than the limits allow."""


class DecodeBudgetExceeded(LimitExceeded):
    """Decoding took longer than the configured time budget."""


class RequestTooCostly(LimitExceeded):
    """One request's work units (text characters, frames, audio seconds) over the per-request maximum."""


class Overloaded(LimitExceeded):
    """The gateway is at its concurrency limit; `details["retry_after_ms"]` says when to retry."""


# --- other statuses -----------------------------------------------------------------------


class DeadlineExceeded(GatewayError):
    """The caller's deadline passed before a verdict could be formed."""

    code = grpc.StatusCode.DEADLINE_EXCEEDED


class PermissionDenied(GatewayError):
    """The caller may not do this (e.g. fetch a URI when URI fetching is disabled)."""

    code = grpc.StatusCode.PERMISSION_DENIED


class FailedPrecondition(GatewayError):
    """The request is valid but the gateway is not set up to serve it (e.g. a pinned canary
    variant where no service has a canary)."""

    code = grpc.StatusCode.FAILED_PRECONDITION


class Unauthenticated(GatewayError):
    code = grpc.StatusCode.UNAUTHENTICATED


class AlreadyExists(GatewayError):
    """A request_id this caller already used for a different request (idempotency keys are
    one request each)."""

    code = grpc.StatusCode.ALREADY_EXISTS


class Unavailable(GatewayError):
    """No verdict can be formed at all; retryable."""

    code = grpc.StatusCode.UNAVAILABLE


class Internal(GatewayError):
    """A gateway bug or a crashed worker; the message says which."""

    code = grpc.StatusCode.INTERNAL


def grpc_status(exc: BaseException) -> tuple[grpc.StatusCode, str, tuple[tuple[str, str], ...]]:
    """Status code, message and trailing metadata for an exception raised while serving.

    Anything that is not a GatewayError is a bug: it maps to INTERNAL with a generic message
    (the details go to the log, not to the caller).
    """
    if isinstance(exc, GatewayError):
        trailers: tuple[tuple[str, str], ...] = ()
        retry_after = exc.details.get("retry_after_ms")
        if retry_after is not None:
            trailers = (("retry-after-ms", str(int(retry_after))),)
        return exc.code, exc.message, trailers
    return grpc.StatusCode.INTERNAL, "internal gateway error; retry, and report it if it persists", ()
