"""What every model service repeats: pinned weight checksums, the policy store with hot reload,
the variant guard and the JSON error answer.

Each service keeps its own part. It names its weights files and their fix in the checksum
errors, and raises its own error type (``WeightsError``, ``ModelFileError``, ``ModelSourceError``)
so callers and tests catch what they always caught. It decides what to build from a policy: the
text service embeds exemplars and compiles lexicons when a policy is (re)loaded; the vision
service keeps the policy as it is, because its prompt embeddings come from the encoder process
over HTTP, asynchronously, and are cached by digest in ``services/vision/prompts.py``. Its own
request checks raise :class:`RequestError` like the guards here do.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Generic, TypeVar

from starlette.responses import JSONResponse

from modgate.policy import Policy, PolicyError, load_policies
from modgate.wire import PolicyRef

log = logging.getLogger(__name__)

T = TypeVar("T")

# --- weight checksums ---------------------------------------------------------------------------


def sha256_file(path: Path) -> str:
    """The hex sha256 of a file, read in chunks (weights files are hundreds of MB)."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def verify_sha256(
    path: Path,
    expected: str,
    *,
    what: str,
    remedy: str,
    error: Callable[[str], Exception],
    missing_remedy: str | None = None,
) -> str:
    """Return the sha256 of `path` if it is `expected`, else raise ``error(message)``.

    The message reads ``"<what> <path> is missing: <fix>"`` or ``"<what> <path> has sha256
    <actual>, expected <expected>: <remedy>"``: which file, both digests and what to do.
    `missing_remedy` replaces `remedy` for a missing file where the fix differs.
    """
    if not path.is_file():
        raise error(f"{what} {path} is missing: {missing_remedy or remedy}")
    actual = sha256_file(path)
    if actual != expected.lower():
        raise error(f"{what} {path} has sha256 {actual}, expected {expected.lower()}: {remedy}")
    return actual


def verify_pins(
    directory: Path,
    pins: Mapping[str, str],
    *,
    what: str,
    remedy: str,
    error: Callable[[str], Exception],
    missing_remedy: str | None = None,
) -> None:
    """:func:`verify_sha256` for every ``relative path -> sha256`` of `pins` under `directory`;
    the first missing or different file raises."""
    for relative, expected in pins.items():
        verify_sha256(
            directory / relative,
            expected,
            what=what,
            remedy=remedy,
            error=error,
            missing_remedy=missing_remedy,
        )


# --- JSON error answers and the variant guard -----------------------------------------------------


class RequestError(ValueError):
    """A request the service will not serve: answered with `status` and ``{"error", "field"}``."""

    def __init__(self, status: int, field: str, message: str) -> None:
        super().__init__(message)
        self.status, self.field, self.message = status, field, message


def error_response(error: RequestError) -> JSONResponse:
    """The JSON answer for `error`. Returned from the API method rather than raised: BentoML 1.4
    answers a raised exception's message wrapped in a one-element list, and the gateway should
    not have to special-case that."""
    return JSONResponse({"error": error.message, "field": error.field}, status_code=int(error.status))


def check_variant(requested: str | None, served: str) -> None:
    """Refuse (409) a request meant for the other variant rather than silently mixing canary
    scores into stable traffic. None or "" means the caller did not say."""
    if requested not in (None, "", served):
        raise RequestError(
            HTTPStatus.CONFLICT,
            "variant",
            f"this replica serves variant {served!r}, not {requested!r}: check the gateway's "
            "upstream URL for that variant",
        )


# --- the policy store -------------------------------------------------------------------------------


class UnknownPolicyError(LookupError):
    """A policy name the store does not hold (the service answers 404)."""


def policy_ref(policy: Policy) -> PolicyRef:
    return PolicyRef(name=policy.name, version=policy.version, digest=policy.digest)


def keep_policy(policy: Policy) -> Policy:
    """The `build` of a store whose service derives nothing from a policy at load time."""
    return policy


@dataclass(frozen=True)
class _Entry(Generic[T]):
    policy: Policy
    built: T


FileStamp = tuple[tuple[str, int, int], ...]


class PolicyStore(Generic[T]):
    """The policies of one directory, each with what ``build(policy)`` made of it.

    The files are checked for edits on use, at most every `reload_s` seconds, and at once when a
    caller names a policy the store does not hold or holds at another version than the caller
    (so a rollout's first request sees the new files). `build` runs once per policy content
    digest: an unchanged policy keeps what was built for it. A broken directory at start raises
    PolicyError; a broken edit later keeps the previous policies, is logged and is kept in
    `last_error`, and responses keep naming the version actually used, so the gateway sees the
    mismatch instead of getting scores against a policy it did not ask for.
    """

    def __init__(self, directory: Path, build: Callable[[Policy], T], *, reload_s: float) -> None:
        self.directory = Path(directory)
        self._build = build
        self._reload_s = reload_s
        # Text calls get() from worker threads, and a build may take a while (embeddings).
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry[T]] = {}
        self.last_error: str | None = None
        self._stamp = self._file_stamp()
        self._entries = self._load(load_policies(self.directory))
        self._checked = time.monotonic()

    def _file_stamp(self) -> FileStamp:
        entries = []
        for path in sorted(self.directory.glob("*.yaml")):
            try:
                stat = path.stat()
            except FileNotFoundError:  # removed between glob and stat: the next check sees it gone
                continue
            entries.append((path.name, stat.st_mtime_ns, stat.st_size))
        return tuple(entries)

    def _load(self, policies: dict[str, Policy]) -> dict[str, _Entry[T]]:
        entries: dict[str, _Entry[T]] = {}
        for name, policy in policies.items():
            current = self._entries.get(name)
            if current is not None and current.policy.digest == policy.digest:
                entries[name] = current
                continue
            entries[name] = _Entry(policy, self._build(policy))
            log.info(
                "policy %s version %s loaded from %s (digest %s)",
                name,
                policy.version,
                self.directory,
                policy.digest,
            )
        return entries

    def _maybe_reload(self, *, force: bool) -> None:
        now = time.monotonic()
        if not force and now - self._checked < self._reload_s:
            return
        self._checked = now
        stamp = self._file_stamp()
        if stamp == self._stamp:
            return
        # Remembered even when the reload fails: a broken file is retried once it changes again.
        self._stamp = stamp
        try:
            self._entries = self._load(load_policies(self.directory))
        except (PolicyError, OSError) as exc:
            self.last_error = str(exc)
            log.error("keeping the previous policies; reloading %s failed: %s", self.directory, exc)
            return
        self.last_error = None

    def get(self, name: str, version: str | None = None) -> T:
        """What was built for policy `name`. A caller holding another `version` than ours (or a
        name we do not hold) makes us look at the files now rather than at the next check."""
        with self._lock:
            held = self._entries.get(name)
            self._maybe_reload(force=held is None or (version is not None and held.policy.version != version))
            entry = self._entries.get(name)
            known = sorted(self._entries)
        if entry is None:
            raise UnknownPolicyError(
                f"policy {name!r} is not loaded (loaded: {', '.join(known) or 'none'}); add {name}.yaml to "
                f"{self.directory} (MODGATE_POLICY_DIR) or name a loaded policy"
            )
        return entry.built

    def all(self) -> list[T]:
        """What was built for every policy held, after the periodic check for edits."""
        with self._lock:
            self._maybe_reload(force=False)
            return [entry.built for entry in self._entries.values()]
