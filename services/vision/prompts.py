"""Policies as the vision service sees them: the prompt texts, their cached embeddings, reloads.

The policy directory is re-read when its files change (checked at most once a second) or when a
request names a version other than the one held. A directory that no longer parses leaves the
last good policies in place (logged), and responses keep naming the version actually used, so
the gateway sees the mismatch instead of getting scores against prompts it did not ask for.
Text embeddings are computed once per policy content digest and cached.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from modgate.policy import Policy, PolicyError, load_policies
from modgate.wire import PolicyRef

log = logging.getLogger(__name__)

RECHECK_SECONDS = 1.0

EncodeTexts = Callable[[list[str]], Awaitable[np.ndarray]]


class UnknownPolicy(LookupError):
    pass


def policy_ref(policy: Policy) -> PolicyRef:
    return PolicyRef(name=policy.name, version=policy.version, digest=policy.digest)


@dataclass(frozen=True)
class PromptBank:
    """One policy's vision prompts and their unit-norm embeddings, laid out for matrix scoring."""

    policy: PolicyRef
    categories: list[str]
    prompts: list[str]  # all category prompts, concatenated in category order
    prompt_ranges: list[tuple[int, int]]  # category -> [start, stop) into `prompts`
    prompt_embeddings: np.ndarray  # (P, D)
    class_embeddings: np.ndarray  # (C, D) renormalised mean of each category's prompts
    neutral_prompts: list[str]
    neutral_embeddings: np.ndarray  # (M, D)
    temperatures: np.ndarray  # (C,)
    thresholds: np.ndarray  # (C,)


async def build_prompt_bank(policy: Policy, encode_texts: EncodeTexts) -> PromptBank:
    rules = policy.vision_categories()
    categories = list(rules)
    prompts: list[str] = []
    ranges: list[tuple[int, int]] = []
    for name in categories:
        start = len(prompts)
        prompts.extend(rules[name].prompts)
        ranges.append((start, len(prompts)))
    neutral = list(policy.neutral.vision_prompts)
    embeddings = np.asarray(await encode_texts(prompts + neutral), dtype=np.float32)
    prompt_emb, neutral_emb = embeddings[: len(prompts)], embeddings[len(prompts) :]
    dim = embeddings.shape[1]
    class_emb = np.zeros((len(categories), dim), dtype=np.float32)
    for c, (start, stop) in enumerate(ranges):
        mean = prompt_emb[start:stop].mean(axis=0)
        class_emb[c] = mean / max(float(np.linalg.norm(mean)), 1e-12)
    return PromptBank(
        policy=policy_ref(policy),
        categories=categories,
        prompts=prompts,
        prompt_ranges=ranges,
        prompt_embeddings=prompt_emb,
        class_embeddings=class_emb,
        neutral_prompts=neutral,
        neutral_embeddings=neutral_emb,
        temperatures=np.array([rules[c].temperature for c in categories], dtype=np.float32),
        thresholds=np.array([rules[c].threshold for c in categories], dtype=np.float32),
    )


class PolicyStore:
    """The policies of one directory, reloaded when the files change."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._signature = self._scan()
        self._policies = load_policies(directory)  # a broken directory at start is fatal
        self._checked_at = time.monotonic()

    def _scan(self) -> tuple[tuple[str, int, int], ...]:
        entries = []
        for path in sorted(self.directory.glob("*.yaml")):
            try:
                stat = path.stat()
            except FileNotFoundError:  # removed between glob and stat: the next scan sees it gone
                continue
            entries.append((path.name, stat.st_mtime_ns, stat.st_size))
        return tuple(entries)

    def _maybe_reload(self, *, force: bool) -> None:
        now = time.monotonic()
        if not force and now - self._checked_at < RECHECK_SECONDS:
            return
        self._checked_at = now
        signature = self._scan()
        if signature == self._signature:
            return
        self._signature = signature
        try:
            policies = load_policies(self.directory)
        except (PolicyError, OSError) as exc:
            log.error("vision: keeping the previous policies; reloading %s failed: %s", self.directory, exc)
            return
        changed = [n for n, p in policies.items() if n not in self._policies or self._policies[n] != p]
        log.info("vision: reloaded policies from %s (changed: %s)", self.directory, changed or "none")
        self._policies = policies

    def get(self, name: str, version: str | None = None) -> Policy:
        held = self._policies.get(name)
        self._maybe_reload(force=held is None or (version is not None and held.version != version))
        policy = self._policies.get(name)
        if policy is None:
            raise UnknownPolicy(
                f"policy {name!r} is not loaded; this service holds {sorted(self._policies)} "
                f"from {self.directory}"
            )
        return policy

    def all(self) -> list[Policy]:
        self._maybe_reload(force=False)
        return list(self._policies.values())


class PromptCache:
    """Prompt banks keyed by policy content digest; each is computed once, even under concurrency."""

    def __init__(self, encode_texts: EncodeTexts) -> None:
        self._encode_texts = encode_texts
        self._banks: dict[tuple[str, str], PromptBank] = {}
        self._lock = asyncio.Lock()

    async def get(self, policy: Policy) -> PromptBank:
        key = (policy.name, policy.digest)
        bank = self._banks.get(key)
        if bank is not None:
            return bank
        async with self._lock:
            bank = self._banks.get(key)
            if bank is None:
                bank = await build_prompt_bank(policy, self._encode_texts)
                # Older digests of the same policy are dead weight once the new one is cached.
                self._banks = {k: v for k, v in self._banks.items() if k[0] != policy.name}
                self._banks[key] = bank
                log.info(
                    "vision: cached %d prompt embeddings for policy %s v%s",
                    len(bank.prompts) + len(bank.neutral_prompts),
                    policy.name,
                    policy.version,
                )
        return bank
