"""The readers' view of every bank: loaded snapshots, hot-reloaded, with PDQ and exact lookups.

    matcher = BankMatcher(bank_dir, signals={SignalType.PDQ})       # the vision service
    matcher = BankMatcher(bank_dir, signals={SignalType.MD5, SignalType.SHA256})  # the gateway
    lookup = matcher.match_pdq(codes, qualities, policy.banks)  # .hits, .notes, .banks
    exact = matcher.match_exact(md5=..., sha256=...)

A reader loads only the signal types it matches on. `maybe_refresh()` (cheap: one small file
read every reload_interval_s) notices a writer's change through the bank directory's VERSION
file and loads the new snapshots on a background thread; lookups keep using the previous
ones until the new ones are ready, so a reload never stalls a request.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from modgate.banks.entries import BankEntry
from modgate.banks.index import PdqIndex, build_pdq_index
from modgate.banks.signals import SignalType, normalise_hash
from modgate.banks.snapshot import EntryTable, SnapshotError, load_codes, read_manifest
from modgate.banks.store import BankError, BankStore
from modgate.policy import BankRule

log = logging.getLogger(__name__)

# Near-identical banked frames (a static scene banked from several uploads) can all match one
# query frame; the closest few are evidence enough.
MAX_HITS_PER_FRAME = 4


class ExactTable:
    """Sorted hashes of one exact signal type, looked up by binary search."""

    def __init__(self, kind: SignalType, codes: np.ndarray, rows: np.ndarray) -> None:
        self.kind = kind
        keys = np.ascontiguousarray(codes).view(f"S{kind.nbytes}").ravel()
        order = np.argsort(keys, kind="stable")
        self._keys, self._rows = keys[order], rows[order]

    def rows(self, value: str) -> list[int]:
        key = np.array(bytes.fromhex(normalise_hash(self.kind, value)), dtype=f"S{self.kind.nbytes}")
        lo, hi = np.searchsorted(self._keys, key, side="left"), np.searchsorted(self._keys, key, side="right")
        return [int(r) for r in self._rows[lo:hi]]


@dataclass(frozen=True)
class LoadedBank:
    name: str
    generation: int
    entries: int
    directory: Path
    table: EntryTable
    pdq: PdqIndex | None = None
    pdq_rows: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    exact: dict[SignalType, ExactTable] = field(default_factory=dict)

    def entry(self, row: int) -> BankEntry:
        return self.table.entry(row)


@dataclass(frozen=True)
class PdqHit:
    bank: str
    frame: int  # index of the query frame
    distance: int
    entry: BankEntry


@dataclass(frozen=True)
class PdqLookup:
    hits: list[PdqHit]  # by frame, then distance
    notes: list[str]  # policy banks that are not loaded
    banks: Mapping[str, LoadedBank]  # the snapshots the hits came from


@dataclass(frozen=True)
class ExactHit:
    bank: str
    signal_type: SignalType
    entry: BankEntry


def load_bank(name: str, directory: Path, signals: Collection[SignalType]) -> LoadedBank:
    manifest = read_manifest(directory)
    pdq, pdq_rows = None, np.empty(0, np.int64)
    if SignalType.PDQ in signals:
        codes, pdq_rows = load_codes(directory, SignalType.PDQ)
        pdq = build_pdq_index(codes)
    exact = {
        kind: ExactTable(kind, *load_codes(directory, kind))
        for kind in (SignalType.MD5, SignalType.SHA256)
        if kind in signals
    }
    return LoadedBank(
        name=name,
        generation=int(manifest["generation"]),
        entries=int(manifest["entries"]),
        directory=directory,
        table=EntryTable(directory),
        pdq=pdq,
        pdq_rows=pdq_rows,
        exact=exact,
    )


class BankMatcher:
    """Every bank in one bank directory, as loaded snapshots."""

    def __init__(
        self,
        root: Path,
        *,
        signals: Collection[SignalType] = frozenset(SignalType),
        reload_interval_s: float = 2.0,
    ) -> None:
        self.store = BankStore(root)
        self.signals = frozenset(signals)
        self.reload_interval_s = reload_interval_s
        self._banks: dict[str, LoadedBank] = {}
        self._token: str | None = None
        self._checked_at = 0.0
        self._refreshing = threading.Lock()
        self.refresh()

    @property
    def banks(self) -> Mapping[str, LoadedBank]:
        return self._banks

    def refresh(self) -> bool:
        """Load what changed since the last refresh; True when anything did. Never raises:
        a bank that fails to load keeps its previous snapshot (and is retried next time)."""
        with self._refreshing:
            self._checked_at = time.monotonic()
            token = self.store.version_token()
            if token == self._token:
                return False
            banks, complete = {}, True
            for name in self.store.names():
                try:
                    directory = self.store.current_dir(name)
                    held = self._banks.get(name)
                    if held is not None and held.directory == directory:
                        banks[name] = held
                        continue
                    started = time.perf_counter()
                    banks[name] = load_bank(name, directory, self.signals)
                    log.info(
                        "banks: loaded %s generation %d (%d entries) in %.2f s",
                        name,
                        banks[name].generation,
                        banks[name].entries,
                        time.perf_counter() - started,
                    )
                except (BankError, SnapshotError, OSError) as exc:
                    complete = False
                    log.warning("banks: cannot load bank %s (%s); keeping what was loaded", name, exc)
                    if name in self._banks:
                        banks[name] = self._banks[name]
            changed = banks.keys() != self._banks.keys() or any(
                banks[n] is not self._banks.get(n) for n in banks
            )
            self._banks = banks
            self._token = token if complete else None
            return changed

    def maybe_refresh(self) -> None:
        """Start a background refresh when reload_interval_s has passed since the last check."""
        if time.monotonic() - self._checked_at < self.reload_interval_s or self._refreshing.locked():
            return
        self._checked_at = time.monotonic()
        threading.Thread(target=self.refresh, name="bank-reload", daemon=True).start()

    def match_pdq(self, codes: np.ndarray, qualities: np.ndarray, rules: Mapping[str, BankRule]) -> PdqLookup:
        """PDQ hits of query frames in the banks `rules` names (each bank: its own distance and
        quality floor), the closest few per frame and bank; plus notes on banks not loaded."""
        banks = self._banks
        hits: list[PdqHit] = []
        notes: list[str] = []
        for name, rule in rules.items():
            bank = banks.get(name)
            if bank is None or bank.pdq is None:
                notes.append(
                    f"bank {name!r} named by the policy is not in the bank directory {self.store.root}"
                )
                continue
            usable = np.flatnonzero(np.asarray(qualities) >= rule.pdq_min_quality)
            if not len(usable) or not len(bank.pdq):
                continue
            found = bank.pdq.search(codes[usable], rule.pdq_max_distance)
            if not len(found):
                continue
            first = np.searchsorted(found.query, found.query, side="left")
            closest = np.arange(len(found)) - first < MAX_HITS_PER_FRAME
            for query, item, distance in zip(
                found.query[closest], found.item[closest], found.distance[closest], strict=True
            ):
                entry = bank.entry(int(bank.pdq_rows[item]))
                hits.append(PdqHit(name, int(usable[query]), int(distance), entry))
        hits.sort(key=lambda h: (h.frame, h.distance, h.bank))
        return PdqLookup(hits, notes, banks)

    def match_exact(
        self, *, md5: str | None = None, sha256: str | None = None, banks: Iterable[str] | None = None
    ) -> list[ExactHit]:
        """Entries whose MD5 or SHA-256 equals the content's, in the named banks (default: all)."""
        loaded = self._banks
        wanted = {SignalType.MD5: md5, SignalType.SHA256: sha256}
        hits = []
        for name in loaded if banks is None else banks:
            bank = loaded.get(name)
            if bank is None:
                continue
            for kind, value in wanted.items():
                if value and kind in bank.exact:
                    hits += [ExactHit(name, kind, bank.entry(r)) for r in bank.exact[kind].rows(value)]
        return hits
