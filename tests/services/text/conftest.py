"""Shared fixtures: the real all-MiniLM-L6-v2 encoder, loaded once per test session."""

from __future__ import annotations

import pytest

from modgate.policy import DEFAULT_POLICY_DIR, Policy, load_policy
from services.text.encoder import Encoder, load_text_encoder
from services.text.models import resolve_model
from services.text.normalise import WordSegmenter
from services.text.pipeline import PolicyBundle, TextModerator


@pytest.fixture(scope="session")
def text_encoder() -> Encoder:
    resolved = resolve_model()
    # Two threads: the shared CI machine has two cores.
    return load_text_encoder("minilm", minilm=resolved, usem=None, threads=2)


@pytest.fixture(scope="session")
def moderator(text_encoder: Encoder) -> TextModerator:
    return TextModerator(segmenter=WordSegmenter(text_encoder.vocabulary()))


@pytest.fixture(scope="session")
def default_policy() -> Policy:
    return load_policy(DEFAULT_POLICY_DIR / "default.yaml")


@pytest.fixture(scope="session")
def default_bundle(moderator: TextModerator, text_encoder: Encoder, default_policy: Policy) -> PolicyBundle:
    return moderator.build_policy(default_policy, text_encoder.encode)


@pytest.fixture(scope="session")
def service_encoder() -> Encoder:
    """The service's default encoder (USE multilingual + MiniLM), as the trained scorer expects."""
    from services.text.config import TextSettings
    from services.text.usem import resolve_usem

    kind = TextSettings.model_fields["encoder"].default
    return load_text_encoder(kind, minilm=resolve_model(), usem=resolve_usem(), threads=2)


@pytest.fixture(scope="session")
def service_moderator(service_encoder: Encoder) -> TextModerator:
    """TextModerator as the service builds it: the policy's trained scorer, sentences, languages."""
    from services.text.scorer import scorer_for_policy
    from services.text.train.data import LANGUAGES

    return TextModerator(
        segmenter=WordSegmenter(service_encoder.vocabulary()),
        scorers=lambda policy: scorer_for_policy(
            policy, encoder_kind=service_encoder.name_kind, encoder_identity=service_encoder.identity
        ),
        trusted_languages=frozenset(LANGUAGES),
        exemplar_space=service_encoder.exemplar_space,
    )


@pytest.fixture(scope="session")
def multilingual_policy() -> Policy:
    """The default policy plus the trained scorer and code words (opt-in: policy "multilingual")."""
    return load_policy(DEFAULT_POLICY_DIR / "multilingual.yaml")


@pytest.fixture(scope="session")
def scored_bundle(
    service_moderator: TextModerator, service_encoder: Encoder, multilingual_policy: Policy
) -> PolicyBundle:
    return service_moderator.build_policy(multilingual_policy, service_encoder.encode)
