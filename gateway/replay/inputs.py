"""Which policy changes replay can re-fuse, and which change the stored scores themselves.

A stored verdict keeps the scores the services returned (gateway/orchestrator/record.py).
Re-fusing them under a new policy is right only for what the gateway applies to those
scores; a field the services score *with* (prompts, exemplars, lexicons, what OCR reads,
which bank entries match) changed means the stored scores are not what the new policy would
have produced: those verdicts need a rescan (the media moderated again), and replay says so
per field instead of printing a wrong answer.

Every field of modgate.policy.Policy is decided here (tests/gateway/replay keep the table
complete: a new Policy field fails them until it is added). Paths use the policy's YAML
keys, `*` for a category, bank or modality name. `scope` says which stored scores go
stale, so only the verdicts that hold such scores are flagged:

  text    the text service's scores of every text item (TEXT sources, the AUDIO transcript,
          on-screen text)
  frames  the vision service's frame scores and the on-screen text it read
  banks   the PDQ frame matches and exact hits on the upload

    path                                       replay          why
    name, version                              re-fused        labels
    categories.<added>                         rescan text     never scored: no stored score for it
                                               and/or frames   (those of its rules it has)
    categories.<removed>                       rescan text     the text service scores its categories
                                               (re-fused if    against each other; fusion ignores the
                                               no text rule)   scores of categories the policy lacks
    categories.*.description                   re-fused        documentation: no service reads it
    categories.*.thresholds.review, .block     re-fused        fusion's decision
    categories.*.vision <added>                rescan frames   never scored
    categories.*.vision <removed>              re-fused        a category is calibrated against the
                                                               neutral prompts alone; fusion skips it
    categories.*.vision.prompts                rescan frames   the zero-shot prompt ensemble
    categories.*.vision.temperature, .threshold rescan frames  calibration, in the vision service
    categories.*.vision.min_frames, .min_seconds re-fused      fusion's temporal rule
    categories.*.text <added or removed>       rescan text     the text service's categories
    categories.*.text.description              re-fused        documentation: services/text scores with
                                                               the scorer, exemplars and word lists only
    categories.*.text.exemplars                rescan text     semantic scores and their calibration
    categories.*.text.blocklist.*              rescan text     lexicon scores
    categories.*.text.codewords                rescan text     code-word scores
    text_scorer, text_scorer.*                 rescan text     the trained scorer the text scores came from
    neutral.vision_prompts                     rescan frames   calibration anchors
    neutral.text_exemplars                     rescan text     calibration anchors
    profanity.*                                rescan text     lexicon terms, their category and score
    fusion.method, fusion.modality_weights.*   re-fused        fusion
    failure.*                                  re-fused        fusion's failure actions
    ocr.enabled, .min_confidence, .min_chars   rescan frames   what vision reads: the on-screen text
    ocr.weight                                 re-fused        fusion's weight of on-screen text
    banks.<added>                              rescan banks    nothing was matched against it
    banks.<removed>                            re-fused        its hits are dropped, as the gateway
                                                               would not look it up
    banks.*.category, .action,                 re-fused        the gateway's bank rules (hashes.py,
      .exact_short_circuit, .video.*                           record.refuse)
    banks.*.pdq_max_distance, .pdq_min_quality rescan banks    which frames the vision service matched
    requests.*, store.*                        re-fused        admission, the store: no score

A path no row names (a field added to Policy without deciding it here) needs a rescan: an
undecided field is not assumed harmless.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from gateway.fusion import State
from gateway.orchestrator.stored import SHORT_CIRCUIT, FusionDocument
from modgate.policy import Modality, Policy, PolicyError, parse_policy

TEXT, FRAMES, BANKS = "text", "frames", "banks"
SCOPES = (TEXT, FRAMES, BANKS)
RESCAN = "needs a rescan: stored scores were computed with the old value"


class _Absent(Enum):
    """A key one side of a comparison does not have (an Enum: it stays itself through pickle)."""

    KEY = "absent"


MISSING: Any = _Absent.KEY


@dataclass(frozen=True)
class Rule:
    pattern: str  # dotted path, fnmatch-style; `*` matches one key (no dots)
    rescan: frozenset[str]  # stale scopes; empty: re-fusable
    why: str


def _rule(pattern: str, rescan: tuple[str, ...], why: str) -> Rule:
    return Rule(pattern, frozenset(rescan), why)


# Whole categories and banks appearing or going are decided in _whole(); this is the rest.
RULES: tuple[Rule, ...] = (
    _rule("name", (), "a label"),
    _rule("version", (), "a label"),
    _rule("categories.*.description", (), "documentation: no service reads it"),
    _rule("categories.*.thresholds.review", (), "fusion's decision threshold"),
    _rule("categories.*.thresholds.block", (), "fusion's decision threshold"),
    _rule("categories.*.vision.prompts", (FRAMES,), "the zero-shot prompt ensemble"),
    _rule("categories.*.vision.temperature", (FRAMES,), "calibration, applied in the vision service"),
    _rule("categories.*.vision.threshold", (FRAMES,), "calibration, applied in the vision service"),
    _rule("categories.*.vision.min_frames", (), "fusion's temporal rule"),
    _rule("categories.*.vision.min_seconds", (), "fusion's temporal rule"),
    _rule("categories.*.text.description", (), "documentation: the text service does not score with it"),
    _rule("categories.*.text.exemplars", (TEXT,), "semantic scores and their calibration"),
    _rule("categories.*.text.blocklist.terms", (TEXT,), "lexicon scores"),
    _rule("categories.*.text.blocklist.regexes", (TEXT,), "lexicon scores"),
    _rule("categories.*.text.blocklist.score", (TEXT,), "lexicon scores"),
    _rule("categories.*.text.codewords", (TEXT,), "code-word scores"),
    _rule("text_scorer", (TEXT,), "the trained text scorer"),
    _rule("text_scorer.*", (TEXT,), "the trained text scorer (artifact, digest, encoder)"),
    _rule("neutral.vision_prompts", (FRAMES,), "the vision calibration's anchors"),
    _rule("neutral.text_exemplars", (TEXT,), "the text calibration's anchors"),
    _rule("profanity.enabled", (TEXT,), "lexicon terms"),
    _rule("profanity.category", (TEXT,), "the category lexicon hits score"),
    _rule("profanity.score", (TEXT,), "lexicon scores"),
    _rule("fusion.method", (), "fusion"),
    _rule("fusion.modality_weights.*", (), "fusion's weights"),
    _rule("failure.on_failed", (), "fusion's failure action"),
    _rule("failure.on_timeout", (), "fusion's failure action"),
    _rule("failure.on_uncalibrated", (), "fusion's failure action"),
    _rule("ocr.enabled", (FRAMES,), "whether vision reads on-screen text"),
    _rule("ocr.min_confidence", (FRAMES,), "which on-screen lines vision keeps"),
    _rule("ocr.min_chars", (FRAMES,), "which on-screen lines vision keeps"),
    _rule("ocr.weight", (), "fusion's weight of on-screen text"),
    _rule("banks.*.category", (), "the gateway's bank rule"),
    _rule("banks.*.action", (), "the gateway's bank rule"),
    _rule("banks.*.exact_short_circuit", (), "the gateway's bank rule"),
    _rule("banks.*.video.*", (), "the gateway's video rule"),
    _rule("banks.*.pdq_max_distance", (BANKS,), "which frames the vision service matched"),
    _rule("banks.*.pdq_min_quality", (BANKS,), "which frames the vision service matched"),
    _rule("requests.*", (), "admission: nothing a score depends on"),
    _rule("store.*", (), "the verdict store: nothing a score depends on"),
)
UNDECIDED = _rule("*", SCOPES, "a policy field replay has not decided: assumed to change scores")


@dataclass(frozen=True)
class InputChange:
    """One policy field that differs between a stored verdict's policy and the new one."""

    path: str
    old: Any  # MISSING: the stored policy has no such key
    new: Any
    rescan: frozenset[str]  # scopes whose stored scores it makes stale; empty: re-fusable
    why: str

    def describe(self) -> str:
        return RESCAN if self.rescan else f"re-fused ({self.why})"


@dataclass
class InputCheck:
    """What differs between one stored policy document and the new policy."""

    changes: list[InputChange] = field(default_factory=list)

    @property
    def stale(self) -> list[InputChange]:
        return [c for c in self.changes if c.rescan]

    def stale_for(self, scopes: frozenset[str]) -> list[InputChange]:
        """The changes that make a record holding `scopes` (record_scopes) need a rescan."""
        return [c for c in self.changes if c.rescan & scopes]


def normalized(document: dict[str, Any]) -> dict[str, Any]:
    """A stored policy document as this code's Policy dumps it (defaults of fields added since
    filled in); as stored when it no longer parses."""
    try:
        return parse_policy(document).model_dump(mode="json")
    except PolicyError:
        return document


def check_inputs(stored: dict[str, Any] | None, policy: Policy) -> InputCheck:
    """Every field where `policy` differs from a stored verdict's policy document, each
    decided (re-fused or needs a rescan). No stored document: every score counts as stale."""
    if stored is None:
        reason = "the stored verdicts' policy document is missing from the store"
        return InputCheck(
            [InputChange("<policy document>", MISSING, policy.digest, frozenset(SCOPES), reason)]
        )
    new = policy.model_dump(mode="json")
    return InputCheck(
        [_decide(path, old, value) for path, old, value in _differences(normalized(stored), new)]
    )


def _differences(old: Any, new: Any, path: str = "") -> list[tuple[str, Any, Any]]:
    """(path, old, new) of every leaf that differs; a key on one side only is one difference
    at its own path (lists compare whole)."""
    if isinstance(old, dict) and isinstance(new, dict):
        found = []
        for key in list(old) + [k for k in new if k not in old]:
            child = f"{path}.{key}" if path else str(key)
            found += _differences(old.get(key, MISSING), new.get(key, MISSING), child)
        return found
    return [] if old == new else [(path, old, new)]


def _decide(path: str, old: Any, new: Any) -> InputChange:
    whole = _whole(path, old, new)
    if whole is not None:
        return InputChange(path, old, new, whole.rescan, whole.why)
    rule = next(
        (r for r in RULES if fnmatch.fnmatchcase(path, r.pattern) and _same_depth(path, r)), UNDECIDED
    )
    return InputChange(path, old, new, rule.rescan, rule.why)


def _same_depth(path: str, rule: Rule) -> bool:
    return path.count(".") == rule.pattern.count(".")  # fnmatch's `*` would cross dots


def _whole(path: str, old: Any, new: Any) -> Rule | None:
    """A category, a category's vision or text rule, or a bank that one side lacks."""
    parts = path.split(".")
    absent_old, absent_new = old in (MISSING, None), new in (MISSING, None)
    if not (absent_old or absent_new):
        return None
    if parts[0] == "categories" and len(parts) == 2:
        if absent_old:
            scored = (TEXT,) * bool(new.get("text")) + (FRAMES,) * bool(new.get("vision"))
            return _rule(path, scored, "a new category: never scored")
        if isinstance(old, dict) and old.get("text") is not None:
            return _rule(path, (TEXT,), "the text service scores its categories against each other")
        return _rule(path, (), "fusion ignores scores of categories the policy lacks")
    if parts[0] == "categories" and len(parts) == 3 and parts[2] == "vision":
        if absent_old:
            return _rule(path, (FRAMES,), "a new vision rule: never scored")
        return _rule(
            path, (), "each category is calibrated against the neutral prompts alone: fusion skips it"
        )
    if parts[0] == "categories" and len(parts) == 3 and parts[2] == "text":
        return _rule(path, (TEXT,), "the text service scores its categories against each other")
    if parts[0] == "banks" and len(parts) == 2:
        if absent_old:
            return _rule(path, (BANKS,), "a new bank: nothing was matched against it")
        return _rule(path, (), "its matches are dropped: the gateway would not look it up")
    return None


def record_scopes(document: FusionDocument) -> frozenset[str]:
    """Which kinds of stored scores a fusion document holds (what an input change can make stale)."""
    scopes = set()
    if document.texts:
        scopes.add(TEXT)
    visual = document.outcomes.get(Modality.VISUAL)
    if document.frames or (visual is not None and visual.state in (State.OK, State.UNCALIBRATED)):
        scopes.add(FRAMES)
    media_ran = any(
        o.state != State.SKIPPED
        for m, o in document.outcomes.items()
        if m in (Modality.AUDIO, Modality.VISUAL)
    )
    if media_ran or document.kind == SHORT_CIRCUIT or document.exact or document.hashes is not None:
        scopes.add(BANKS)  # media was there: its bytes and frames could match a bank's entries
    return frozenset(scopes)
