"""Request validation: every documented field constraint, checked before any work is done.

Each failure is a BadField (INVALID_ARGUMENT) naming the field, so a caller can fix it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from gateway.errors import BadField
from modgate.policy import Policy
from modgate.v1 import moderation_pb2 as pb

# Documented in proto/modgate/v1/moderation.proto.
MAX_REQUEST_ID_CHARS = 128
MAX_CONTENT_ID_CHARS = 256
MAX_TITLE_BYTES = 1024
MAX_DESCRIPTION_BYTES = 16 * 1024
MAX_HASHTAGS = 64
# Gateway limits the proto leaves open.
MAX_HASHTAG_CHARS = 140
MAX_CAPTIONS = 5000
MAX_CAPTION_CHARS = 2000
MAX_LOCALE_CHARS = 35

_LOCALE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_MODALITIES = frozenset(pb.Modality.values()) - {pb.MODALITY_UNSPECIFIED}


def _bad(field: str, problem: str) -> BadField:
    return BadField(f"{field}: {problem}", field=field)


def validate_request(
    request: pb.ModerateRequest,
    media: bytes | memoryview,
    policies: dict[str, Policy],
    default_policy: str,
    *,
    streamed: bool,
) -> Policy:
    """Check `request`, whose media field the servicer has read once as `media` (each read of
    a protobuf bytes field copies it, up to 32 MiB); return the policy it asks for."""
    _validate_ids(request)
    _validate_text(request)
    _validate_captions(request.captions)
    if request.locale and (len(request.locale) > MAX_LOCALE_CHARS or not _LOCALE.match(request.locale)):
        raise _bad("locale", f"{request.locale[:40]!r} is not a BCP-47 tag such as 'en' or 'pt-BR'")

    _validate_options(request.options)

    if streamed and (media or request.media_uri):
        raise _bad("header", "the ModerateStream header must leave media and media_uri empty; send data")
    if request.media_uri and media:
        raise _bad("media", "set at most one of media and media_uri")

    name = request.policy or default_policy
    policy = policies.get(name)
    if policy is None:
        known = ", ".join(sorted(policies))
        raise _bad("policy", f"unknown policy {name[:64]!r}; this gateway has: {known}")
    skips_all = set(request.options.skip_modalities) >= _MODALITIES
    if skips_all and not policy.requests.allow_skip_all_modalities:
        raise _bad(
            "options.skip_modalities",
            f"skips AUDIO, VISUAL and TEXT, leaving nothing to moderate; policy {policy.name!r} does not "
            "allow that (requests.allow_skip_all_modalities: false): run at least one modality",
        )
    return policy


def has_text(request: pb.ModerateRequest) -> bool:
    """Whether the request carries any text of its own to moderate."""
    return any(
        (
            request.title.strip(),
            request.description.strip(),
            any(tag.strip() for tag in request.hashtags),
            any(cue.text.strip() for cue in request.captions),
        )
    )


def _validate_ids(request: pb.ModerateRequest) -> None:
    if len(request.request_id) > MAX_REQUEST_ID_CHARS:
        raise _bad("request_id", f"longer than {MAX_REQUEST_ID_CHARS} characters")
    if _CONTROL.search(request.request_id):
        raise _bad("request_id", "contains control characters")
    if len(request.content_id) > MAX_CONTENT_ID_CHARS:
        raise _bad("content_id", f"longer than {MAX_CONTENT_ID_CHARS} characters")


def _validate_text(request: pb.ModerateRequest) -> None:
    if len(request.title.encode()) > MAX_TITLE_BYTES:
        raise _bad("title", f"longer than {MAX_TITLE_BYTES} bytes (UTF-8)")
    if len(request.description.encode()) > MAX_DESCRIPTION_BYTES:
        raise _bad("description", f"longer than {MAX_DESCRIPTION_BYTES} bytes (UTF-8)")
    if len(request.hashtags) > MAX_HASHTAGS:
        raise _bad("hashtags", f"more than {MAX_HASHTAGS} hashtags")
    for i, tag in enumerate(request.hashtags):
        if len(tag) > MAX_HASHTAG_CHARS:
            raise _bad(f"hashtags[{i}]", f"longer than {MAX_HASHTAG_CHARS} characters")


def _validate_captions(captions: Sequence[pb.CaptionCue]) -> None:
    if len(captions) > MAX_CAPTIONS:
        raise _bad("captions", f"more than {MAX_CAPTIONS} cues")
    for i, cue in enumerate(captions):
        if len(cue.text) > MAX_CAPTION_CHARS:
            raise _bad(f"captions[{i}].text", f"longer than {MAX_CAPTION_CHARS} characters")
        if cue.end_ms < cue.start_ms:
            raise _bad(f"captions[{i}]", f"end_ms ({cue.end_ms}) is before start_ms ({cue.start_ms})")


PINNABLE_VARIANTS = ("", "stable", "canary")


def _validate_options(options: pb.ModerateOptions) -> None:
    fps = options.frame_sample_fps
    if not math.isfinite(fps) or fps < 0:
        raise _bad("options.frame_sample_fps", f"must be finite and >= 0 (0: gateway default), got {fps}")
    for i, modality in enumerate(options.skip_modalities):
        if modality not in _MODALITIES:
            raise _bad(f"options.skip_modalities[{i}]", f"{modality} is not AUDIO, VISUAL or TEXT")
    if options.variant not in PINNABLE_VARIANTS:
        raise _bad("options.variant", f"must be 'stable', 'canary' or empty, got {options.variant[:32]!r}")
