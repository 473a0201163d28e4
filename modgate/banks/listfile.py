"""Read ThreatExchange / HMA hash lists, line by line, naming the line of anything malformed.

Two shapes are read (the first line that is not blank or a ``#`` comment decides):

* CSV or TSV with a header naming at least the signal type and the hash, as
  ``threatexchange dataset -P --csv`` writes (``signal_type,signal_str,collab,category,tags``)
  and ``modgate bank export`` writes (those plus entry_id, note, added_at, content_id,
  content_ms). Header aliases: type / indicator_type; signal / signal_value / hash / indicator.
  Rows whose ThreatExchange category is NEGATIVE_CLASS (known false positives, test data) are
  skipped and counted.
* One signal per line, as threatexchange's file exchange (LocalFileSignalExchangeAPI) reads:
  ``<signal_type> <hash>``, or a bare ``<hash>`` when the caller names the signal type.

Reading stops at the first bad line with a ListError that names the file and the line; the
store only publishes after the whole list has been read, so a bad list changes nothing.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from modgate.banks.entries import ENTRY_ID_PATTERN, BankEntry
from modgate.banks.signals import SignalError, SignalType, normalise_hash, parse_signal_type

_HEADER_ALIASES = {
    "signal_type": "signal_type",
    "type": "signal_type",
    "indicator_type": "signal_type",
    "signal_str": "signal_str",
    "signal": "signal_str",
    "signal_value": "signal_str",
    "hash": "signal_str",
    "indicator": "signal_str",
    "collab": "collab",
    "category": "category",
    "tags": "tags",
    "entry_id": "entry_id",
    "note": "note",
    "added_at": "added_at",
    "content_id": "content_id",
    "content_ms": "content_ms",
}
_OPINIONS = {"POSITIVE_CLASS", "INVESTIGATION_SEED", "NEGATIVE_CLASS", ""}
MAX_FIELD_CHARS = 4096


class ListError(ValueError):
    """A hash list that cannot be imported; the message names the file and line."""


@dataclass(frozen=True)
class ListDefaults:
    """What the importer fills in where a row says nothing (category overrides the row's tags)."""

    added_at: str
    source: str = ""
    category: str | None = None
    signal_type: SignalType | None = None


@dataclass
class ListReader:
    """Iterate a list's entries; `negative_skipped` counts NEGATIVE_CLASS rows after iterating."""

    path: Path
    defaults: ListDefaults
    negative_skipped: int = 0

    def entries(self) -> Iterator[tuple[int, BankEntry]]:
        """(line number, entry) for every entry; raises ListError at the first bad line."""
        try:
            with self.path.open(encoding="utf-8-sig", newline="") as handle:
                yield from self._read(handle)
        except UnicodeDecodeError as exc:
            raise ListError(
                f"{self.path}: not UTF-8 text ({exc}); hash lists are UTF-8 CSV/TSV or lines"
            ) from None
        except OSError as exc:
            raise ListError(f"{self.path}: cannot read the list ({exc.strerror or exc})") from None

    def _read(self, handle: TextIO) -> Iterator[tuple[int, BankEntry]]:
        first = next((line for line in handle if line.strip() and not line.lstrip().startswith("#")), "")
        if not first:
            return  # an empty list: nothing to import
        handle.seek(0)
        delimiter = "\t" if "\t" in first else ","
        header = [h.strip().lower() for h in first.strip().split(delimiter)]
        if len(header) > 1 and any(_HEADER_ALIASES.get(h) == "signal_str" for h in header):
            yield from self._read_table(handle, delimiter)
        else:
            yield from self._read_lines(handle)

    def _fail(self, line: int, problem: str) -> ListError:
        return ListError(f"{self.path} line {line}: {problem}; nothing was imported")

    def _read_table(self, handle: TextIO, delimiter: str) -> Iterator[tuple[int, BankEntry]]:
        reader = csv.reader(_skip_comments(handle), delimiter=delimiter)
        header_row = next(row for row in reader if any(f.strip() for f in row))
        names = [_HEADER_ALIASES.get(h.strip().lower(), "") for h in header_row]
        if "signal_type" not in names and self.defaults.signal_type is None:
            raise self._fail(
                reader.line_num, "the header has no signal_type column; add one or pass --signal-type"
            )
        unknown = [h for h, n in zip(header_row, names, strict=True) if not n]
        if unknown:
            raise self._fail(
                reader.line_num, f"unknown column(s) {unknown} (known: {sorted(set(_HEADER_ALIASES))})"
            )
        # Column positions; a missing column reads the "" appended to every row.
        where = {name: names.index(name) if name in names else -1 for name in set(_HEADER_ALIASES.values())}
        try:
            for fields in reader:
                if not any(f.strip() for f in fields):
                    continue
                if len(fields) != len(names):
                    raise self._fail(
                        reader.line_num, f"{len(fields)} fields where the header has {len(names)}"
                    )
                fields.append("")
                entry = self._table_entry(reader.line_num, fields, where)
                if entry is not None:
                    yield reader.line_num, entry
        except csv.Error as exc:
            raise self._fail(reader.line_num, f"malformed CSV ({exc})") from None

    def _table_entry(self, line: int, fields: list[str], where: dict[str, int]) -> BankEntry | None:
        opinion = fields[where["category"]].strip().upper()
        if opinion not in _OPINIONS:
            known = sorted(_OPINIONS - {""})
            raise self._fail(line, f"category {opinion!r} is not a ThreatExchange opinion ({known})")
        if opinion == "NEGATIVE_CLASS":
            self.negative_skipped += 1
            return None
        longest = max(fields, key=len)
        if len(longest) > MAX_FIELD_CHARS:
            raise self._fail(line, f"a field is {len(longest)} characters; the limit is {MAX_FIELD_CHARS}")
        content_ms = fields[where["content_ms"]].strip()
        if content_ms and not content_ms.isdigit():
            raise self._fail(line, f"content_ms {content_ms!r} is not a non-negative integer")
        entry_id = fields[where["entry_id"]].strip()
        if entry_id and not ENTRY_ID_PATTERN.match(entry_id):
            raise self._fail(line, f"entry_id {entry_id!r} must be 1-64 of A-Z a-z 0-9 _ . : -")
        return self._entry(
            line,
            fields[where["signal_type"]],
            fields[where["signal_str"]],
            source=fields[where["collab"]].strip(),
            category=fields[where["tags"]].strip(),
            entry_id=entry_id,
            note=fields[where["note"]],
            added_at=fields[where["added_at"]].strip(),
            content_id=fields[where["content_id"]].strip(),
            content_ms=int(content_ms) if content_ms else None,
        )

    def _read_lines(self, handle: TextIO) -> Iterator[tuple[int, BankEntry]]:
        for number, raw in enumerate(handle, start=1):
            text = raw.strip()
            if not text or text.startswith("#"):
                continue
            parts = text.split()
            if len(parts) == 1:
                if self.defaults.signal_type is None:
                    raise self._fail(
                        number,
                        "a bare hash with no signal type: write '<signal_type> <hash>' or pass --signal-type",
                    )
                yield number, self._entry(number, "", parts[0])
            elif len(parts) == 2:
                yield number, self._entry(number, parts[0], parts[1])
            else:
                raise self._fail(number, f"{len(parts)} words; expected '<signal_type> <hash>'")

    def _entry(
        self,
        line: int,
        kind_name: str,
        value: str,
        *,
        source: str = "",
        category: str = "",
        entry_id: str = "",
        note: str = "",
        added_at: str = "",
        content_id: str = "",
        content_ms: int | None = None,
    ) -> BankEntry:
        try:
            kind = parse_signal_type(kind_name) if kind_name.strip() else self.defaults.signal_type
            if kind is None:
                raise SignalError("no signal type in the row and none given (--signal-type)")
            digest = normalise_hash(kind, value)
        except SignalError as exc:
            raise self._fail(line, str(exc)) from None
        return BankEntry(
            entry_id=entry_id,
            signal_type=kind,
            hash=digest,
            category=self.defaults.category if self.defaults.category is not None else category,
            source=source or self.defaults.source,
            note=note,
            added_at=added_at or self.defaults.added_at,
            content_id=content_id,
            content_ms=content_ms,
        )


def _skip_comments(handle: TextIO) -> Iterator[str]:
    for line in handle:
        if line.lstrip().startswith("#"):
            yield "\n"  # keep csv's line numbers
        else:
            yield line


def lines_format(entry: BankEntry) -> str:
    """The entry in threatexchange's one-signal-per-line file format."""
    return f"{entry.signal_type.te_name} {entry.hash}\n"
