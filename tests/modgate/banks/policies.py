"""Policies for the bank tests: the default policy plus a `banks:` section."""

from __future__ import annotations

from typing import Any

import yaml

from modgate.policy import DEFAULT_POLICY_DIR, Policy, parse_policy


def default_data() -> dict[str, Any]:
    return yaml.safe_load((DEFAULT_POLICY_DIR / "default.yaml").read_text(encoding="utf-8"))


def policy_with_banks(banks: dict[str, Any], **changes: Any) -> Policy:
    data = default_data()
    data["banks"] = banks
    data.update(changes)
    return parse_policy(data, source="test")


def policy_yaml_with_banks(banks: dict[str, Any], name: str = "banked") -> str:
    data = default_data()
    data.update(name=name, version="1", banks=banks)
    return yaml.safe_dump(data, sort_keys=False)
