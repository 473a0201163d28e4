"""Console users from a tokens file: who is reviewing, and whether they are an admin.

The console never stores tokens, only their SHA-256 digests, in a YAML file named by
MODGATE_CONSOLE_TOKENS_FILE (the same scheme as the gateway's gateway/auth.py):

    # sha256(token) hex -> user
    9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08:
      user: alice
      role: reviewer            # reviewer: queue, claim, view, decide; admin: also export
                                # labels, the audit trail, release others' leases

`python -m modgate.console.users new --user alice --role reviewer [--file PATH]` prints a fresh
token and its entry (and appends the entry to PATH when given).

A presented token is hashed and compared with every digest (hmac.compare_digest, no early
exit). The file is read again when it changes: removing an entry ends that user's sessions.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import secrets
import sys
import threading
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from modgate.tokenfile import MAX_TOKEN_CHARS, TokensFileError, parse_entries, token_digest


class Role(StrEnum):
    REVIEWER = "reviewer"
    ADMIN = "admin"


@dataclass(frozen=True)
class User:
    name: str
    role: Role
    digest: str  # hex sha256 of the user's token: a session names it, so revocation ends it

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    user: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$")
    role: Role


def parse_tokens(data: object, *, source: str) -> dict[str, User]:
    """Hex digest -> User."""
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise TokensFileError(
            f"tokens file {source} must map sha256(token) hex digests to {{user, role}} "
            "(see `python -m modgate.console.users new --help`)"
        )
    users: dict[str, User] = {}
    for digest, entry in parse_entries(data, _Entry, source=source):
        users[digest] = User(name=entry.user, role=entry.role, digest=digest)
    return users


class UserDirectory:
    """The tokens file, re-read when its modification time or size changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._users: dict[str, User] = {}

    def users(self) -> dict[str, User]:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return {}
        stamp = (stat.st_mtime_ns, stat.st_size)
        with self._lock:
            if stamp != self._stamp:
                text = self.path.read_text(encoding="utf-8")
                try:
                    data = yaml.safe_load(text)
                except yaml.YAMLError as exc:
                    raise TokensFileError(f"tokens file {self.path} is not YAML: {exc}") from None
                self._users = parse_tokens(data, source=str(self.path))
                self._stamp = stamp
            return self._users

    def authenticate(self, token: str) -> User | None:
        token = token.strip()
        if not token or len(token) > MAX_TOKEN_CHARS:
            return None
        presented = hashlib.sha256(token.encode("utf-8")).digest()
        found: User | None = None
        for digest, user in self.users().items():
            # Every digest is compared (no break): the time taken does not depend on which matched.
            if hmac.compare_digest(bytes.fromhex(digest), presented):
                found = user
        return found

    def by_digest(self, digest: str) -> User | None:
        return self.users().get(digest)


def new_entry(user: str, role: Role) -> tuple[str, str]:
    """A fresh token and its tokens-file entry (YAML)."""
    _Entry(user=user, role=role)  # the same validation the console applies
    token = secrets.token_urlsafe(32)
    entry = yaml.safe_dump({token_digest(token): {"user": user, "role": role.value}}, sort_keys=False)
    return token, entry


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m modgate.console.users")
    sub = parser.add_subparsers(dest="command", required=True)
    new = sub.add_parser("new", help="print a fresh token and its tokens-file entry")
    new.add_argument("--user", required=True)
    new.add_argument("--role", choices=[r.value for r in Role], default=Role.REVIEWER.value)
    new.add_argument("--file", type=Path, help="also append the entry to this tokens file")
    args = parser.parse_args(argv)
    try:
        token, entry = new_entry(args.user, Role(args.role))
    except ValidationError as exc:
        print(f"invalid user name {args.user!r}: {exc.errors()[0]['msg']}", file=sys.stderr)
        return 2
    if args.file is not None:
        args.file.parent.mkdir(parents=True, exist_ok=True)
        with args.file.open("a", encoding="utf-8") as out:
            out.write(entry)
        args.file.chmod(0o600)
    print(f"token (give it to {args.user}; it is not stored): {token}")
    print("tokens file entry:")
    print(entry, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
