"""Policies as the vision service sees them: the prompt texts and their cached embeddings.

The policies themselves (reloaded when the files change) live in a services.common.PolicyStore,
checked at most every RECHECK_SECONDS. Prompt embeddings come from the encoder process over
HTTP, so they are built here, asynchronously, once per policy content digest, and cached.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import numpy as np

from modgate.policy import Policy
from modgate.wire import PolicyRef
from services.common import policy_ref

log = logging.getLogger(__name__)

RECHECK_SECONDS = 1.0  # how often the policy files are checked for edits

EncodeTexts = Callable[[list[str]], Awaitable[np.ndarray]]


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
