"""Labelled evaluation sets: JSONL (one item per line) or TSV (`label<TAB>text`).

JSONL fields: `text` and/or `media` (a path, relative to the file), optional `title`,
`hashtags`, `id`, `locale`, `label` (a policy category or `benign`) and `decision` (the expected
ALLOW / REVIEW / BLOCK). Every problem names the file and the line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENIGN = "benign"
DECISIONS = ("ALLOW", "REVIEW", "BLOCK")


class DatasetError(ValueError):
    """A dataset that cannot be evaluated; the message names the file, the line and the fix."""


@dataclass(frozen=True)
class EvalItem:
    id: str
    label: str  # a policy category or "benign"
    text: str = ""
    media: Path | None = None
    title: str = ""
    hashtags: tuple[str, ...] = ()
    locale: str = ""
    expected_decision: str = ""  # "" when the dataset does not say
    # Scores decided elsewhere (e.g. a stored verdict a reviewer labelled): category -> score.
    stored_scores: dict[str, float] | None = field(default=None, compare=False)

    @property
    def kind(self) -> str:
        return "media" if self.media is not None else "text"


def load_dataset(path: Path, categories: set[str]) -> list[EvalItem]:
    """The items of `path` (.jsonl / .json lines, or .tsv), labels checked against `categories`."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"dataset {path} does not exist")
    reader = _tsv_item if path.suffix.lower() in (".tsv", ".txt") else _jsonl_item
    items: list[EvalItem] = []
    seen: set[str] = set()
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip() or line.startswith("#"):
                continue
            where = f"{path}:{number}"
            item = reader(line.rstrip("\n"), where, path.parent, number)
            if item.label != BENIGN and item.label not in categories:
                known = ", ".join(sorted(categories))
                raise DatasetError(f"{where}: label {item.label!r} is not 'benign' or a category ({known})")
            if item.id in seen:
                raise DatasetError(f"{where}: id {item.id!r} is used twice; ids must be unique")
            seen.add(item.id)
            items.append(item)
    if not items:
        raise DatasetError(f"dataset {path} has no items")
    return items


def _tsv_item(line: str, where: str, _base: Path, number: int) -> EvalItem:
    label, tab, text = line.partition("\t")
    if not tab or not text.strip():
        raise DatasetError(f"{where}: a TSV line reads 'label<TAB>text'")
    return EvalItem(id=f"line-{number}", label=label.strip(), text=text.strip())


def _jsonl_item(line: str, where: str, base: Path, number: int) -> EvalItem:
    try:
        data: Any = json.loads(line)
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{where}: not JSON ({exc.msg}); one JSON object per line") from None
    if not isinstance(data, dict):
        raise DatasetError(f"{where}: each line must be a JSON object")
    label = data.get("label")
    if not isinstance(label, str) or not label:
        raise DatasetError(f"{where}: 'label' (a category or 'benign') is missing")
    text, media = str(data.get("text") or ""), data.get("media")
    if not text and not media:
        raise DatasetError(f"{where}: an item needs 'text' or 'media'")
    media_path = None
    if media:
        media_path = (base / str(media)).resolve()
        if not media_path.is_file():
            raise DatasetError(f"{where}: media file {media_path} does not exist")
    decision = str(data.get("decision") or "").upper()
    if decision and decision not in DECISIONS:
        raise DatasetError(f"{where}: decision {decision!r} is not ALLOW, REVIEW or BLOCK")
    hashtags = data.get("hashtags") or []
    if not isinstance(hashtags, list):
        raise DatasetError(f"{where}: 'hashtags' must be a list of strings")
    return EvalItem(
        id=str(data.get("id") or f"line-{number}"),
        label=label,
        text=text,
        media=media_path,
        title=str(data.get("title") or ""),
        hashtags=tuple(str(h) for h in hashtags),
        locale=str(data.get("locale") or ""),
        expected_decision=decision,
    )
