"""One bank entry, and its row in the hash-list CSV a bank is stored and exported as.

The columns start with the ones ``threatexchange dataset -P --csv`` writes and HMA's tooling
reads (signal_type, signal_str, collab, category, tags); modgate's own follow. ThreatExchange's
`category` is its opinion (POSITIVE_CLASS: the content fits the collaboration) and the harm
labels are its `tags`, so an entry's category is written as the tags column.
"""

from __future__ import annotations

import csv
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from modgate.banks.signals import SignalType, parse_signal_type

TE_COLUMNS = ("signal_type", "signal_str", "collab", "category", "tags")
COLUMNS = (*TE_COLUMNS, "entry_id", "note", "added_at", "content_id", "content_ms")
HEADER = ",".join(COLUMNS) + "\n"
POSITIVE = "POSITIVE_CLASS"

ENTRY_ID_PATTERN = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_NEEDS_QUOTES = re.compile(r'[,"\r\n]')


@dataclass(frozen=True, slots=True)
class BankEntry:
    entry_id: str
    signal_type: SignalType
    hash: str  # lower-case hex
    category: str = ""  # the harm category it was banked under (informational: the policy decides)
    source: str = ""  # where it came from: a list's collaboration, "modgate bank add", ...
    note: str = ""
    added_at: str = ""  # ISO 8601 UTC
    content_id: str = ""  # the banked content (a file name, an upload id)
    content_ms: int | None = None  # where a banked frame sits in that content

    def row(self, entry_id: str | None = None) -> str:
        """The entry as one CSV line (newline included), in COLUMNS order; `entry_id` replaces
        the entry's own (the store assigns ids without copying entries)."""
        free = (self.source, self.category, self.note, self.added_at, self.content_id)
        if _NEEDS_QUOTES.search("".join(free)):
            source, category, note, added_at, content_id = (_quote(f) for f in free)
        else:  # the common case: nothing to quote (type, hash, id and times never need it)
            source, category, note, added_at, content_id = free
        content_ms = "" if self.content_ms is None else str(self.content_ms)
        return (
            f"{self.signal_type.te_name},{self.hash},{source},{POSITIVE},{category},"
            f"{entry_id or self.entry_id},{note},{added_at},{content_id},{content_ms}\n"
        )

    @classmethod
    def from_row(cls, line: str) -> BankEntry:
        """Parse a line written by row() (a bank's own storage; lists go through listfile)."""
        (fields,) = csv.reader([line])
        kind, value, source, _opinion, category, entry_id, note, added_at, content_id, content_ms = fields
        return cls(
            entry_id=entry_id,
            signal_type=parse_signal_type(kind),
            hash=value,
            category=category,
            source=source,
            note=note,
            added_at=added_at,
            content_id=content_id,
            content_ms=int(content_ms) if content_ms else None,
        )


def _quote(field: str) -> str:
    if _NEEDS_QUOTES.search(field):
        return '"' + field.replace('"', '""') + '"'
    return field


def new_entry_ids(count: int) -> list[str]:
    """`count` random 16-hex-digit entry ids (64 bits: collisions are checked, not expected)."""
    blob = os.urandom(8 * count).hex()
    return [blob[i : i + 16] for i in range(0, 16 * count, 16)]


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
