"""A bank's content as one immutable snapshot directory, in memory and on disk.

On disk (``<bank>/g00000007/``), written once and never changed::

    manifest.json        format, bank, generation, entry counts per signal type, written_at
    entries.csv          the bank as a hash list (header + one row per entry: what export prints)
    offsets.npy          int64 (N+1): byte offset of each row after the header (random access)
    ids.npy, kinds.npy   entry ids (bytes) and signal-type codes, in row order
    <type>.npy           uint8 (n, hash bytes): the hashes of one signal type, in row order
    <type>_rows.npy      int64 (n): the entry row of each of those hashes

The columns let readers load 1M PDQ hashes as one 32 MB array and read the metadata of only
the rows that matched; writers rebuild a snapshot from the previous one without parsing it.
"""

from __future__ import annotations

import json
import mmap
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from modgate.banks.entries import HEADER, BankEntry
from modgate.banks.signals import SignalType

FORMAT = 1
MANIFEST = "manifest.json"
ENTRIES = "entries.csv"
_HEADER_BYTES = len(HEADER.encode())


class SnapshotError(RuntimeError):
    """A snapshot directory that cannot be read (missing files, another format)."""


def _empty_codes(kind: SignalType) -> np.ndarray:
    return np.empty((0, kind.nbytes), dtype=np.uint8)


@dataclass(frozen=True)
class SnapshotData:
    """A bank's rows in entry order, as the writer builds them."""

    body: bytes  # the CSV rows, without the header
    offsets: np.ndarray  # int64 (N+1)
    ids: np.ndarray  # bytes (N,)
    kinds: np.ndarray  # uint8 (N,): SignalType.code
    codes: dict[SignalType, np.ndarray] = field(default_factory=dict)  # (n, nbytes) uint8
    rows: dict[SignalType, np.ndarray] = field(default_factory=dict)  # (n,) int64 entry rows

    @classmethod
    def empty(cls) -> SnapshotData:
        return cls(
            body=b"",
            offsets=np.zeros(1, dtype=np.int64),
            ids=np.empty(0, dtype="S16"),
            kinds=np.empty(0, dtype=np.uint8),
            codes={k: _empty_codes(k) for k in SignalType},
            rows={k: np.empty(0, dtype=np.int64) for k in SignalType},
        )

    def __len__(self) -> int:
        return len(self.kinds)

    def counts(self) -> dict[str, int]:
        return {kind.value: len(self.rows[kind]) for kind in SignalType}

    def appended(self, entries: list[BankEntry], ids: list[str]) -> SnapshotData:
        """This snapshot plus `entries` under `ids` (both checked unique by the caller)."""
        if not entries:
            return self
        lines = [entry.row(entry_id).encode() for entry, entry_id in zip(entries, ids, strict=True)]
        lengths = np.fromiter((len(line) for line in lines), dtype=np.int64, count=len(lines))
        offsets = np.concatenate([self.offsets, self.offsets[-1] + np.cumsum(lengths)])
        kinds = np.fromiter((e.signal_type.code for e in entries), dtype=np.uint8, count=len(entries))
        first = len(self)
        codes, rows = dict(self.codes), dict(self.rows)
        for kind in SignalType:
            picked = np.flatnonzero(kinds == kind.code)
            if not len(picked):
                continue
            hexes = "".join(entries[i].hash for i in picked)
            new = np.frombuffer(bytes.fromhex(hexes), dtype=np.uint8).reshape(-1, kind.nbytes)
            codes[kind] = np.concatenate([self.codes[kind], new])
            rows[kind] = np.concatenate([self.rows[kind], picked.astype(np.int64) + first])
        return SnapshotData(
            body=self.body + b"".join(lines),
            offsets=offsets,
            ids=np.concatenate([self.ids, np.array([i.encode() for i in ids])]),
            kinds=np.concatenate([self.kinds, kinds]),
            codes=codes,
            rows=rows,
        )

    def without(self, drop: np.ndarray) -> SnapshotData:
        """This snapshot less the rows where `drop` (bool, N) is true."""
        if not drop.any():
            return self
        keep = ~drop
        lengths = np.diff(self.offsets)
        body = np.frombuffer(self.body, dtype=np.uint8)[np.repeat(keep, lengths)].tobytes()
        offsets = np.concatenate([[0], np.cumsum(lengths[keep])]).astype(np.int64)
        new_row = np.cumsum(keep) - 1  # old row -> new row, for kept rows
        codes, rows = {}, {}
        for kind in SignalType:
            kept = keep[self.rows[kind]]
            codes[kind] = self.codes[kind][kept]
            rows[kind] = new_row[self.rows[kind][kept]].astype(np.int64)
        return SnapshotData(body, offsets, self.ids[keep], self.kinds[keep], codes, rows)

    def entry(self, row: int) -> BankEntry:
        start, end = int(self.offsets[row]), int(self.offsets[row + 1])
        return BankEntry.from_row(self.body[start:end].decode())

    def write(self, directory: Path, manifest: dict[str, Any]) -> None:
        """Write every file into `directory` (which must not exist yet) and fsync them."""
        directory.mkdir(parents=True)
        _write_bytes(directory / ENTRIES, HEADER.encode() + self.body)
        arrays = {"offsets": self.offsets, "ids": self.ids, "kinds": self.kinds}
        for kind in SignalType:
            arrays[kind.value] = self.codes[kind]
            arrays[f"{kind.value}_rows"] = self.rows[kind]
        for name, array in arrays.items():
            with (directory / f"{name}.npy").open("wb") as handle:
                np.save(handle, np.ascontiguousarray(array), allow_pickle=False)
                handle.flush()
                os.fsync(handle.fileno())
        full = {"format": FORMAT, **manifest, "entries": len(self), "signals": self.counts()}
        _write_bytes(directory / MANIFEST, json.dumps(full, indent=2).encode() + b"\n")


def _write_bytes(path: Path, data: bytes) -> None:
    with path.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def read_manifest(directory: Path) -> dict[str, Any]:
    try:
        manifest = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SnapshotError(f"bank snapshot {directory} has no readable {MANIFEST} ({exc})") from None
    if manifest.get("format") != FORMAT:
        raise SnapshotError(
            f"bank snapshot {directory} is format {manifest.get('format')!r}; this modgate reads format "
            f"{FORMAT}: upgrade modgate, or re-import the bank's list"
        )
    return dict(manifest)


def _load(directory: Path, name: str) -> np.ndarray:
    try:
        return np.load(directory / f"{name}.npy", allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise SnapshotError(f"bank snapshot {directory}: cannot read {name}.npy ({exc})") from None


def read_snapshot(directory: Path) -> SnapshotData:
    """The whole snapshot in memory (writers: the base of the next generation)."""
    read_manifest(directory)
    try:
        body = (directory / ENTRIES).read_bytes()[_HEADER_BYTES:]
    except OSError as exc:
        raise SnapshotError(f"bank snapshot {directory}: cannot read {ENTRIES} ({exc})") from None
    return SnapshotData(
        body=body,
        offsets=_load(directory, "offsets"),
        ids=_load(directory, "ids"),
        kinds=_load(directory, "kinds"),
        codes={k: _load(directory, k.value) for k in SignalType},
        rows={k: _load(directory, f"{k.value}_rows") for k in SignalType},
    )


class EntryTable:
    """Random access to a snapshot's entry metadata (readers: only the rows that matched)."""

    def __init__(self, directory: Path) -> None:
        self.offsets = _load(directory, "offsets")
        self._map: mmap.mmap | None = None
        if self.offsets[-1] > 0:
            with (directory / ENTRIES).open("rb") as handle:
                self._map = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)

    def entry(self, row: int) -> BankEntry:
        if self._map is None:
            raise IndexError(row)
        start = _HEADER_BYTES + int(self.offsets[row])
        end = _HEADER_BYTES + int(self.offsets[row + 1])
        return BankEntry.from_row(self._map[start:end].decode())


def load_codes(directory: Path, kind: SignalType) -> tuple[np.ndarray, np.ndarray]:
    """(hashes, entry rows) of one signal type."""
    return _load(directory, kind.value), _load(directory, f"{kind.value}_rows")
