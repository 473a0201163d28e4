"""The labelled text set: JSONL files in data/, one sentence (or short post) per line.

Each line: ``{"text", "label" (benign or a category), "kind" (plain | obfuscated | hard_benign |
benign), "lang" (en, es, pt, fr, de, id, hi = romanised Hindi), "topic"}``; provenance in
data/PROVENANCE.md. The split is fixed by the text itself: sha256 of the case-folded,
whitespace-collapsed text, first 8 hex digits as a number mod 100 -> < 70 train, < 85 dev, else
test. It never depends on file order, on which files exist or on a random seed, so adding
sentences never moves old ones between splits.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

DATA_DIR = Path(__file__).resolve().parent / "data"
BENIGN = "benign"
KINDS = ("plain", "obfuscated", "hard_benign", "benign")
LANGUAGES = ("en", "es", "pt", "fr", "de", "id", "hi")
Split = Literal["train", "dev", "test"]


class DataError(ValueError):
    """A data file line that cannot be used; the message names the file and line."""


@dataclass(frozen=True)
class Example:
    text: str
    label: str  # "benign" or a category
    kind: str
    lang: str
    topic: str
    split: Split
    where: str  # file:line

    @property
    def violating(self) -> bool:
        return self.label != BENIGN


def canonical(text: str) -> str:
    return re.sub(r"\s+", " ", text.casefold()).strip()


def split_of(text: str) -> Split:
    bucket = int(hashlib.sha256(canonical(text).encode("utf-8")).hexdigest()[:8], 16) % 100
    return "train" if bucket < 70 else "dev" if bucket < 85 else "test"


def _example(raw: dict[str, object], where: str, categories: set[str]) -> Example:
    text, label = str(raw.get("text", "")).strip(), str(raw.get("label", ""))
    kind, lang = str(raw.get("kind", "")), str(raw.get("lang", ""))
    if not text:
        raise DataError(f"{where}: empty text")
    if label != BENIGN and label not in categories:
        raise DataError(f"{where}: label {label!r} is neither benign nor a category ({sorted(categories)})")
    if kind not in KINDS:
        raise DataError(f"{where}: kind {kind!r} is not one of {KINDS}")
    if lang not in LANGUAGES:
        raise DataError(f"{where}: lang {lang!r} is not one of {LANGUAGES}")
    if (label == BENIGN) != (kind in ("hard_benign", "benign")):
        raise DataError(f"{where}: kind {kind!r} does not go with label {label!r}")
    return Example(text, label, kind, lang, str(raw.get("topic", "")), split_of(text), where)


def load_examples(categories: set[str], data_dir: Path = DATA_DIR) -> list[Example]:
    """Every labelled line; a text that occurs twice (case and spacing aside) is an error when its
    labels differ and kept once otherwise."""
    files = sorted(data_dir.glob("*.jsonl"))
    if not files:
        raise DataError(f"no *.jsonl files in {data_dir}")
    seen: dict[str, Example] = {}
    for path in files:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            where = f"{path.name}:{number}"
            try:
                raw = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{where}: not JSON ({exc})") from None
            example = _example(raw, where, categories)
            key = canonical(example.text)
            if key in seen:
                if seen[key].label != example.label:
                    raise DataError(f"{where}: same text as {seen[key].where} with another label")
                continue
            seen[key] = example
    return list(seen.values())


def counts(examples: list[Example]) -> dict[str, Counter[str]]:
    """Sizes the issue's bar is about: per split, kind, language and label."""
    return {
        "split": Counter(e.split for e in examples),
        "kind": Counter(e.kind for e in examples),
        "lang": Counter(e.lang for e in examples),
        "label": Counter(e.label for e in examples),
        "non_english": Counter(e.split for e in examples if e.lang != "en"),
    }
