"""Turn a file:// ModerateRequest.media_uri into a path the splitter can read.

file:// URIs must resolve (symlinks included) to a regular file under the configured media
root. http(s) URIs are fetched by gateway/media/fetch.py.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlsplit

from gateway.errors import BadMediaUri, EmptyMedia, MediaTooLarge, PermissionDenied

_MAX_URI_CHARS = 4096


def _too_large(size: int, max_bytes: int) -> MediaTooLarge:
    return MediaTooLarge(
        f"the media at media_uri is {size} bytes or more, over the {max_bytes}-byte limit; "
        "send a shorter or lower-bitrate video",
        limit="bytes",
        value=size,
        maximum=max_bytes,
    )


def uri_scheme(uri: str) -> str:
    if len(uri) > _MAX_URI_CHARS:
        raise BadMediaUri(f"media_uri is longer than {_MAX_URI_CHARS} characters")
    try:
        scheme = urlsplit(uri).scheme.lower()
    except ValueError as exc:  # e.g. an unclosed IPv6 bracket: was an INTERNAL error
        raise BadMediaUri(f"media_uri is not a valid URI ({exc}); check it") from None
    if scheme not in ("file", "http", "https"):
        raise BadMediaUri(
            f"media_uri scheme {scheme or '(none)'!r} is not supported; use file:///path under the "
            "gateway's media root, or http(s):// where URI fetching is enabled"
        )
    return scheme


def resolve_file_uri(uri: str, media_root: Path | None, max_bytes: int) -> Path:
    if media_root is None:
        raise PermissionDenied(
            "file:// media URIs are disabled on this gateway (no media root is configured: "
            "MODGATE_GATEWAY_MEDIA_ROOT); send the media bytes instead"
        )
    parts = urlsplit(uri)
    if parts.netloc not in ("", "localhost"):
        raise BadMediaUri(f"file URI host {parts.netloc!r} is not allowed; use file:///absolute/path")
    raw = unquote(parts.path)
    if "\x00" in raw or not raw.startswith("/"):
        raise BadMediaUri("media_uri must be file:///absolute/path with a path under the media root")
    if ".." in Path(raw).parts:
        raise BadMediaUri("media_uri must not contain '..' (path traversal is rejected)")
    root = media_root.resolve()
    try:
        path = Path(raw).resolve(strict=True)
    except (FileNotFoundError, NotADirectoryError):
        raise BadMediaUri(f"media_uri {uri!r} does not exist under the media root") from None
    except (OSError, RuntimeError) as exc:  # symlink loops, permissions
        raise BadMediaUri(f"media_uri {uri!r} cannot be resolved: {exc}") from None
    if not path.is_relative_to(root):
        raise BadMediaUri(
            f"media_uri {uri!r} resolves outside the gateway's media root; only files under it may be used"
        )
    if not path.is_file():
        raise BadMediaUri(f"media_uri {uri!r} is not a regular file")
    if not os.access(path, os.R_OK):
        raise BadMediaUri(f"media_uri {uri!r} is not readable by the gateway")
    size = path.stat().st_size
    if size == 0:
        raise EmptyMedia(f"the file at media_uri {uri!r} is empty (0 bytes)")
    if size > max_bytes:
        raise _too_large(size, max_bytes)
    return path
