"""Per-caller bearer tokens: who is calling, and which policies it may use.

Callers send `authorization: Bearer <token>` metadata. The gateway never stores tokens, only
their SHA-256 digests, in a YAML file named by MODGATE_GATEWAY_AUTH_TOKENS_FILE:

    # sha256(token) hex -> caller
    9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08:
      caller: checkout-backend
      policies: [default]        # "*" for every policy
      allow_uri_fetch: false     # may it have the gateway fetch http(s) media_uri?
      pin_variant: false         # may it pin the model variant (options.variant; eval callers)?

`python -m gateway.auth new --caller NAME --policy default` prints a fresh token and its entry.

A presented token is hashed and compared with every digest (hmac.compare_digest, no early
exit), so response timing says nothing about how close a guess was. Missing or unknown tokens
are UNAUTHENTICATED; a known caller asking for a policy it may not use, or for a URI fetch it
is not allowed, is PERMISSION_DENIED. With no tokens file authentication is off (a warning is
logged at startup) and every caller may use every policy.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import logging
import secrets
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field

from gateway.errors import PermissionDenied, Unauthenticated
from modgate.tokenfile import MAX_TOKEN_CHARS, TokensFileError, parse_entries, token_digest

log = logging.getLogger("gateway.auth")

ANY_POLICY = "*"


@dataclass(frozen=True)
class Caller:
    name: str
    policies: frozenset[str]
    allow_uri_fetch: bool = False
    # Evaluation callers pin stable/canary to compare them on the same items; product traffic
    # must not choose the model that judges it.
    pin_variant: bool = False

    def may_use(self, policy: str) -> bool:
        return ANY_POLICY in self.policies or policy in self.policies


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    caller: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._@:/-]{0,127}$")
    policies: list[str] = Field(min_length=1)
    allow_uri_fetch: bool = False
    pin_variant: bool = False


def parse_tokens(data: object, *, source: str, policies: Iterable[str]) -> dict[bytes, Caller]:
    """Raw SHA-256 digest -> Caller, validated against the policies the gateway has."""
    known = set(policies)
    if not isinstance(data, dict) or not data:
        raise TokensFileError(
            f"tokens file {source} must map sha256(token) hex digests to callers "
            "(see `python -m gateway.auth new --help`)"
        )
    callers: dict[bytes, Caller] = {}
    for digest, entry in parse_entries(
        data, _Entry, source=source, digest_hint="python -m gateway.auth digest"
    ):
        unknown = sorted(set(entry.policies) - known - {ANY_POLICY})
        if unknown:
            raise TokensFileError(
                f"tokens file {source}: caller {entry.caller!r} is given policy {', '.join(unknown)}, "
                f"which this gateway does not have ({', '.join(sorted(known))})"
            )
        callers[bytes.fromhex(digest)] = Caller(
            name=entry.caller,
            policies=frozenset(entry.policies),
            allow_uri_fetch=entry.allow_uri_fetch,
            pin_variant=entry.pin_variant,
        )
    return callers


def load_tokens(path: Path, policies: Iterable[str]) -> dict[bytes, Caller]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TokensFileError(
            f"tokens file {path} does not exist (MODGATE_GATEWAY_AUTH_TOKENS_FILE); create it or unset "
            "the variable to run without authentication"
        ) from None
    except (OSError, yaml.YAMLError) as exc:
        raise TokensFileError(f"tokens file {path} cannot be read: {exc}") from None
    return parse_tokens(data, source=str(path), policies=policies)


def _metadata_value(value: str | bytes) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else value


class Authenticator:
    """Checks a request's bearer token and what its caller may do. `callers=None`: auth off."""

    def __init__(self, callers: dict[bytes, Caller] | None) -> None:
        self._callers = list(callers.items()) if callers is not None else None

    @classmethod
    def from_file(cls, path: Path | None, policies: Iterable[str]) -> Authenticator:
        if path is None:
            log.warning(
                "caller authentication is OFF (no MODGATE_GATEWAY_AUTH_TOKENS_FILE): any client that "
                "reaches the port may use every policy; configure tokens before exposing the gateway"
            )
            return cls(None)
        callers = load_tokens(path, policies)
        log.info("caller authentication on: %d token(s) from %s", len(callers), path)
        return cls(callers)

    @property
    def enabled(self) -> bool:
        return self._callers is not None

    def authenticate(self, metadata: Iterable[tuple[str, str | bytes]] | None) -> Caller | None:
        """The caller behind the request's token; None when authentication is off."""
        if self._callers is None:
            return None
        values = [_metadata_value(v) for k, v in (metadata or ()) if k.lower() == "authorization"]
        if not values:
            raise Unauthenticated(
                "missing bearer token: send metadata 'authorization: Bearer <token>' (ask the gateway's "
                "operator for a token)"
            )
        if len(values) > 1:
            raise Unauthenticated("send exactly one 'authorization' metadata entry")
        scheme, _, token = values[0].strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthenticated("the authorization metadata must read 'Bearer <token>'")
        if len(token) > MAX_TOKEN_CHARS:
            raise Unauthenticated("unknown bearer token")
        presented = hashlib.sha256(token.encode("utf-8")).digest()
        found: Caller | None = None
        for digest, caller in self._callers:
            # Every digest is compared (no break): the time taken does not depend on which matched.
            if hmac.compare_digest(digest, presented):
                found = caller
        if found is None:
            raise Unauthenticated("unknown bearer token: check the token, or ask the gateway's operator")
        return found

    def authorize(self, caller: Caller | None, policy: str, media_uri: str = "", variant: str = "") -> None:
        """PERMISSION_DENIED unless `caller` may use `policy` (and fetch `media_uri` if http(s),
        and pin the model `variant` if one is asked for)."""
        if caller is None:
            return
        if variant and not caller.pin_variant:
            raise PermissionDenied(
                f"caller {caller.name!r} may not pin the model variant (options.variant={variant!r}); "
                "only evaluation callers may (tokens file: pin_variant: true)",
                caller=caller.name,
            )
        if not caller.may_use(policy):
            allowed = ", ".join(sorted(caller.policies))
            raise PermissionDenied(
                f"caller {caller.name!r} may not use policy {policy!r} (allowed: {allowed}); ask the "
                "gateway's operator to extend its token, or send one of those policies",
                caller=caller.name,
                policy=policy,
            )
        if (
            media_uri
            and urlsplit(media_uri).scheme.lower() in ("http", "https")
            and not caller.allow_uri_fetch
        ):
            raise PermissionDenied(
                f"caller {caller.name!r} may not have the gateway fetch http(s) media URIs; send the "
                "media bytes (Moderate) or stream them (ModerateStream)",
                caller=caller.name,
            )


# --- CLI: make a token entry ------------------------------------------------------------------


def _new(args: argparse.Namespace) -> int:
    token = secrets.token_urlsafe(32)
    entry = {
        token_digest(token): {
            "caller": args.caller,
            "policies": args.policy or ["default"],
            "allow_uri_fetch": args.allow_uri_fetch,
            "pin_variant": args.pin_variant,
        }
    }
    print(f"# token for {args.caller} (give it to the caller; it is not stored anywhere):", file=sys.stderr)
    print(f"# {token}", file=sys.stderr)
    print(yaml.safe_dump(entry, sort_keys=False), end="")
    return 0


def _digest(_args: argparse.Namespace) -> int:
    token = sys.stdin.read().strip()
    if not token:
        print('pipe the token on stdin: printf %s "$TOKEN" | python -m gateway.auth digest', file=sys.stderr)
        return 2
    print(token_digest(token))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gateway.auth", description="gateway caller tokens")
    commands = parser.add_subparsers(dest="command", required=True)
    new = commands.add_parser("new", help="print a fresh token (stderr) and its tokens-file entry (stdout)")
    new.add_argument("--caller", required=True, help="caller name, shown in logs")
    new.add_argument("--policy", action="append", help="a policy it may use (repeat; '*' = all)")
    new.add_argument("--allow-uri-fetch", action="store_true", help="may send http(s) media_uri")
    new.add_argument(
        "--pin-variant", action="store_true", help="may pin the model variant (evaluation callers)"
    )
    new.set_defaults(run=_new)
    digest = commands.add_parser("digest", help="sha256 digest of a token read from stdin")
    digest.set_defaults(run=_digest)
    args = parser.parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
