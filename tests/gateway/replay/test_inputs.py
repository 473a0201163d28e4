"""Which policy changes replay re-fuses and which need a rescan (gateway/replay/inputs.py)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from gateway.orchestrator.stored import FusionDocument
from gateway.replay.inputs import BANKS, FRAMES, SCOPES, TEXT, UNDECIDED, check_inputs, record_scopes
from modgate.policy import Policy, load_policies, parse_policy

DEFAULT = load_policies()["default"]


def document(**changes: Any) -> dict[str, Any]:
    """The default policy's document with dotted-path changes applied (None deletes the key)."""
    data = copy.deepcopy(DEFAULT.model_dump(mode="json"))
    for path, value in changes.items():
        *parents, last = path.split("__")
        node = data
        for key in parents:
            node = node[key]
        if value is None:
            del node[last]
        else:
            node[last] = value
    return data


def policy(**changes: Any) -> Policy:
    return parse_policy(document(**changes))


def decided(stored: dict[str, Any], new: Policy) -> dict[str, frozenset[str]]:
    return {c.path: c.rescan for c in check_inputs(stored, new).changes}


def leaves(value: Any, path: str = "") -> list[str]:
    if isinstance(value, dict) and value:
        return [
            leaf for key, child in value.items() for leaf in leaves(child, f"{path}.{key}" if path else key)
        ]
    return [path]


def test_every_field_of_a_fully_filled_policy_is_decided() -> None:
    """A Policy field nobody classified would count as needing a rescan: keep the table whole."""
    bank = {"category": "violence", "video": {"min_fraction": 0.5, "min_seconds": 2.0, "require": "all"}}
    full = document(banks={"known": bank})
    for name in ("harassment", "spam_scam"):  # the categories without a vision rule get one
        full["categories"][name]["vision"] = {"prompts": ["a photo"]}
    full = parse_policy(full).model_dump(mode="json")
    paths = leaves(full)
    assert len(paths) > 100 and {"banks.known.video.require", "ocr.min_chars", "store.on_unavailable"} <= set(
        paths
    )
    undecided = []
    for path in paths:
        stored = copy.deepcopy(full)
        *parents, last = path.split(".")
        node = stored
        for key in parents:
            node = node[key]
        node[last] = ["a value no Policy field takes"]  # the stored document stops parsing: compared raw
        (change,) = check_inputs(stored, parse_policy(full)).changes
        assert change.path == path
        if change.why == UNDECIDED.why:
            undecided.append(path)
    assert undecided == []


def test_an_unchanged_policy_changes_nothing() -> None:
    assert check_inputs(DEFAULT.model_dump(mode="json"), DEFAULT).changes == []


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"categories__violence__thresholds__review": 0.3}, "categories.violence.thresholds.review"),
        ({"categories__violence__vision__min_frames": 3}, "categories.violence.vision.min_frames"),
        ({"categories__violence__vision__min_seconds": 2.0}, "categories.violence.vision.min_seconds"),
        ({"fusion__method": "noisy_or"}, "fusion.method"),
        (
            {"fusion__modality_weights": {"AUDIO": 0.5, "VISUAL": 1.0, "TEXT": 1.0}},
            "fusion.modality_weights.AUDIO",
        ),
        ({"failure__on_failed": "error"}, "failure.on_failed"),
        ({"ocr__weight": 0.5}, "ocr.weight"),
        ({"store__on_unavailable": "refuse"}, "store.on_unavailable"),
        ({"requests__allow_skip_all_modalities": True}, "requests.allow_skip_all_modalities"),
        ({"version": "2"}, "version"),
        ({"categories__violence__description": "other words"}, "categories.violence.description"),
        ({"categories__violence__text__description": "other words"}, "categories.violence.text.description"),
    ],
)
def test_what_fusion_applies_is_re_fused(change: dict[str, Any], path: str) -> None:
    assert decided(DEFAULT.model_dump(mode="json"), policy(**change)) == {path: frozenset()}


def exemplars_plus_one() -> list[str]:
    return [*DEFAULT.categories["violence"].text.exemplars, "I will find you"]  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("change", "path", "scopes"),
    [
        (
            {"categories__violence__text__exemplars": exemplars_plus_one()},
            "categories.violence.text.exemplars",
            {TEXT},
        ),
        (
            {"categories__spam_scam__text__blocklist__terms": ["free money"]},
            "categories.spam_scam.text.blocklist.terms",
            {TEXT},
        ),
        (
            {"categories__violence__vision__prompts": ["a fight"]},
            "categories.violence.vision.prompts",
            {FRAMES},
        ),
        (
            {"categories__violence__vision__temperature": 0.1},
            "categories.violence.vision.temperature",
            {FRAMES},
        ),
        ({"categories__violence__vision__threshold": 0.4}, "categories.violence.vision.threshold", {FRAMES}),
        ({"neutral__text_exemplars": ["hello"]}, "neutral.text_exemplars", {TEXT}),
        ({"neutral__vision_prompts": ["a photo"]}, "neutral.vision_prompts", {FRAMES}),
        ({"profanity__score": 0.9}, "profanity.score", {TEXT}),
        ({"ocr__enabled": False}, "ocr.enabled", {FRAMES}),
        ({"ocr__min_confidence": 0.3}, "ocr.min_confidence", {FRAMES}),
        ({"ocr__min_chars": 5}, "ocr.min_chars", {FRAMES}),
        (
            {"categories__harassment__vision": {"prompts": ["a bully"]}},
            "categories.harassment.vision",
            {FRAMES},
        ),
        ({"categories__weapons__text": None}, "categories.weapons.text", {TEXT}),
        (
            {"categories__fraud": {"description": "f", "text": {"exemplars": ["x"]}}},
            "categories.fraud",
            {TEXT},
        ),
        ({"categories__drugs": None}, "categories.drugs", {TEXT}),
        ({"banks": {"known": {"category": "violence"}}}, "banks.known", {BANKS}),
    ],
)
def test_what_the_services_score_with_needs_a_rescan(
    change: dict[str, Any], path: str, scopes: set[str]
) -> None:
    assert decided(DEFAULT.model_dump(mode="json"), policy(**change)) == {path: frozenset(scopes)}


def test_a_bank_rule_is_re_fused_and_its_matching_is_not() -> None:
    stored = document(banks={"known": {"category": "violence"}})
    rule = {
        "category": "hate",
        "action": "REVIEW",
        "exact_short_circuit": False,
        "video": {"min_seconds": 9.0},
    }
    assert decided(stored, policy(banks={"known": rule})) == {
        "banks.known.category": frozenset(),
        "banks.known.action": frozenset(),
        "banks.known.exact_short_circuit": frozenset(),
        "banks.known.video.min_seconds": frozenset(),
    }
    matching = {"category": "violence", "pdq_max_distance": 20, "pdq_min_quality": 70}
    assert set(decided(stored, policy(banks={"known": matching})).values()) == {frozenset({BANKS})}
    assert decided(stored, DEFAULT) == {"banks.known": frozenset()}  # removed: its hits are dropped


def test_a_removed_vision_rule_or_a_category_without_text_is_re_fused() -> None:
    assert decided(DEFAULT.model_dump(mode="json"), policy(categories__violence__vision=None)) == {
        "categories.violence.vision": frozenset()
    }
    stored = document(categories__extra={"description": "e", "vision": {"prompts": ["x"]}})
    assert decided(stored, DEFAULT) == {"categories.extra": frozenset()}


def test_an_undecided_field_and_a_missing_document_count_as_stale() -> None:
    stored = document(future_field={"knob": 1})  # a newer modgate's field: the document no longer parses
    assert decided(stored, DEFAULT) == {"future_field": frozenset(SCOPES)}
    assert UNDECIDED.rescan == frozenset(SCOPES)
    (change,) = check_inputs(None, DEFAULT).changes
    assert change.rescan == frozenset(SCOPES)


def test_an_older_document_missing_a_field_since_added_compares_at_its_default() -> None:
    stored = document(store=None, requests=None)
    assert check_inputs(stored, DEFAULT).changes == []


def outcome(state: str) -> dict[str, Any]:
    return {"state": state, "reason": "", "latency_ms": 1.0, "model": None, "variant": "stable", "items": 0}


def fused(**fields: Any) -> FusionDocument:
    base: dict[str, Any] = {
        "version": 1,
        "kind": "fused",
        "outcomes": {m: {**outcome("SKIPPED"), "ocr_frames": [0, 0]} for m in ("AUDIO", "VISUAL", "TEXT")},
    }
    for modality, state in fields.pop("states", {}).items():
        base["outcomes"][modality] = {**outcome(state), "ocr_frames": [0, 0]}
    return FusionDocument.read({**base, **fields})


TEXT_ITEM = {
    "item": {"id": "t0", "text": "hello", "source": "title"},
    "result": {"id": "t0", "scores": {"violence": 0.1}, "matches": []},
    "model": {"name": "m", "version": "1"},
}


def test_a_record_is_stale_only_for_the_scores_it_holds() -> None:
    assert record_scopes(fused(texts=[TEXT_ITEM], states={"TEXT": "OK"})) == {TEXT}
    media = fused(texts=[TEXT_ITEM], states={"TEXT": "OK", "AUDIO": "OK", "VISUAL": "UNCALIBRATED"})
    assert record_scopes(media) == {TEXT, FRAMES, BANKS}
    assert record_scopes(fused(states={"AUDIO": "FAILED"})) == {
        BANKS
    }  # there was media: banks could match it
    short = FusionDocument.read({"version": 1, "kind": "short_circuit", "exact": []})
    assert record_scopes(short) == {BANKS}
    check = check_inputs(DEFAULT.model_dump(mode="json"), policy(ocr__enabled=False))
    assert check.stale_for(record_scopes(fused(texts=[TEXT_ITEM], states={"TEXT": "OK"}))) == []
    assert [c.path for c in check.stale_for(record_scopes(media))] == ["ocr.enabled"]
