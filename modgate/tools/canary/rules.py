"""The canary rules file: a typed model (pydantic) of rules.yaml and its loader.

A bad file is refused with RulesError naming the file and each bad field with what it must
be; unknown fields are errors, so a misspelt threshold cannot silently fall back to a default.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

DEFAULT_RULES = Path(__file__).with_name("rules.yaml")


class RulesError(ValueError):
    """A rules file that cannot be used; the message names the file and the fields."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FlagRateRule(_Strict):
    max_change: float = Field(default=0.05, gt=0, lt=1)
    confidence: float = Field(default=0.99, gt=0.5, lt=1)


class ShadowRule(_Strict):
    max_disagreement: float = Field(default=0.05, gt=0, lt=1)
    confidence: float = Field(default=0.95, gt=0.5, lt=1)


class LatencyRule(_Strict):
    max_p95_ratio: float = Field(default=1.5, gt=1)
    min_p95_increase_ms: float = Field(default=50.0, ge=0)


class ErrorRule(_Strict):
    max_rate_delta: float = Field(default=0.01, gt=0, lt=1)
    confidence: float = Field(default=0.95, gt=0.5, lt=1)


class Rules(_Strict):
    min_requests: int = Field(default=200, ge=1)
    flag_rate: FlagRateRule = Field(default_factory=FlagRateRule)
    shadow: ShadowRule = Field(default_factory=ShadowRule)
    latency: LatencyRule = Field(default_factory=LatencyRule)
    errors: ErrorRule = Field(default_factory=ErrorRule)


def parse_rules(data: object, *, source: str = "<memory>") -> Rules:
    if not isinstance(data, dict):
        raise RulesError(
            f"invalid canary rules {source}: expected a mapping of rules (min_requests, flag_rate, "
            f"shadow, latency, errors), got {type(data).__name__}; see {DEFAULT_RULES}"
        )
    try:
        return Rules.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}" for err in exc.errors()
        )
        raise RulesError(
            f"invalid canary rules {source}: {problems} (the defaults: {DEFAULT_RULES})"
        ) from None


def load_rules(path: Path | str | None = None) -> Rules:
    """The rules in `path`, or the packaged defaults (rules.yaml next to this module)."""
    path = DEFAULT_RULES if path is None else Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RulesError(f"canary rules file {path} does not exist (omit --rules for the defaults)") from None
    except yaml.YAMLError as exc:
        raise RulesError(f"canary rules file {path} is not valid YAML: {exc}") from None
    return parse_rules(data, source=str(path))
