"""Shared fixtures: the real all-MiniLM-L6-v2 encoder, loaded once per test session."""

from __future__ import annotations

import pytest

from modgate.policy import DEFAULT_POLICY_DIR, Policy, load_policy
from services.text.encoder import Encoder
from services.text.models import load_encoder, resolve_model
from services.text.normalise import WordSegmenter
from services.text.pipeline import PolicyBundle, TextModerator


@pytest.fixture(scope="session")
def text_encoder() -> Encoder:
    resolved = resolve_model()
    # Two threads: the shared CI machine has two cores.
    return Encoder(load_encoder(resolved, device="cpu", threads=2), resolved, device="cpu")


@pytest.fixture(scope="session")
def moderator(text_encoder: Encoder) -> TextModerator:
    return TextModerator(segmenter=WordSegmenter(text_encoder.vocabulary()))


@pytest.fixture(scope="session")
def default_policy() -> Policy:
    return load_policy(DEFAULT_POLICY_DIR / "default.yaml")


@pytest.fixture(scope="session")
def default_bundle(moderator: TextModerator, text_encoder: Encoder, default_policy: Policy) -> PolicyBundle:
    return moderator.build_policy(default_policy, text_encoder.encode)
