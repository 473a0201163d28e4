"""Tokens files: sha256(token) hex -> an entry, for the gateway's callers (gateway/auth.py) and
the review console's users (modgate/console/users.py). Tokens themselves are never stored; each
reader validates its entries with its own pydantic model."""

from __future__ import annotations

import hashlib
import re
from typing import TypeVar

from pydantic import BaseModel, ValidationError

DIGEST = re.compile(r"^[0-9a-f]{64}$")
# Longer tokens are refused before hashing (a bearer token is a few dozen characters).
MAX_TOKEN_CHARS = 1024

Entry = TypeVar("Entry", bound=BaseModel)


class TokensFileError(ValueError):
    """A tokens file that cannot be used; the message names the file and the entry."""


def token_digest(token: str) -> str:
    """The hex digest a tokens file stores for `token`."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def parse_entries(
    data: dict[object, object], model: type[Entry], *, source: str, digest_hint: str = ""
) -> list[tuple[str, Entry]]:
    """(hex digest, entry) for each item of a tokens file's mapping, in file order. A key that is
    not a digest is not echoed (it may be a token pasted in by mistake); `digest_hint` names the
    command that makes one."""
    entries: list[tuple[str, Entry]] = []
    for number, (key, value) in enumerate(data.items(), start=1):
        digest = str(key).strip().lower()
        if not DIGEST.match(digest):
            hint = f" ({digest_hint})" if digest_hint else ""
            raise TokensFileError(
                f"tokens file {source}: the key of entry {number} is not a sha256 hex digest; store "
                f"sha256(token){hint}, never the token itself"
            )
        try:
            entry = model.model_validate(value)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or '<entry>'}: {e['msg']}" for e in exc.errors()
            )
            raise TokensFileError(f"tokens file {source}: entry {digest[:12]}...: {problems}") from None
        entries.append((digest, entry))
    return entries
