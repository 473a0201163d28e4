"""The bank directory and its writer: create, add, import, remove, list, export.

Layout (the directory can be a Kubernetes volume shared by every replica)::

    <bank dir>/VERSION               bumped after every change to any bank (readers poll it)
    <bank dir>/<bank>/CURRENT        the live snapshot's directory name, e.g. g00000007
    <bank dir>/<bank>/g00000007/     an immutable snapshot (modgate.banks.snapshot)
    <bank dir>/<bank>/.lock          writers of one bank take turns on it (flock)

A change builds the next snapshot in a temporary directory, renames it into place, then
replaces CURRENT and VERSION (write + fsync + rename each): a reader sees the old snapshot
or the new one, never a half-written one, and a change that fails publishes nothing. The
two previous snapshots are kept for readers still loading them.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from modgate.banks.entries import BankEntry, new_entry_ids, utc_now
from modgate.banks.listfile import ListDefaults, ListReader
from modgate.banks.signals import SignalType
from modgate.banks.snapshot import ENTRIES, SnapshotData, read_manifest, read_snapshot
from modgate.policy import BANK_NAME_PATTERN

VERSION_FILE = "VERSION"
CURRENT_FILE = "CURRENT"
KEEP_PREVIOUS = 2
_GENERATION = re.compile(r"^g(\d{8})$")


class BankError(RuntimeError):
    """A bank operation that cannot be done; the message says what to do instead."""


class UnknownBankError(BankError):
    pass


@dataclass(frozen=True)
class BankInfo:
    name: str
    generation: int
    entries: int
    signals: dict[str, int]  # signal type -> entries
    written_at: str
    path: Path  # the live snapshot directory


@dataclass(frozen=True)
class ChangeReport:
    bank: str
    generation: int
    added: int = 0
    removed: int = 0
    duplicates: int = 0  # hashes already in the bank (or repeated in the input): not added twice
    negative_skipped: int = 0  # NEGATIVE_CLASS rows of a ThreatExchange list
    entries: int = 0  # the bank's size afterwards
    seconds: float = 0.0
    added_ids: tuple[str, ...] = ()


def check_bank_name(name: str) -> str:
    if not re.match(BANK_NAME_PATTERN, name):
        raise BankError(
            f"bank name {name!r} is not valid: 1-63 characters of a-z 0-9 _ -, "
            "starting with a letter or digit"
        )
    return name


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class BankStore:
    """Every bank under one directory. Safe for concurrent writers (per-bank flock)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    # --- reading -----------------------------------------------------------------------------

    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if (p / CURRENT_FILE).is_file())

    def version_token(self) -> str:
        """Changes whenever any bank changes ("" before the first bank exists)."""
        try:
            return (self.root / VERSION_FILE).read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return ""

    def current_dir(self, name: str) -> Path:
        bank_dir = self.root / check_bank_name(name)
        try:
            current = (bank_dir / CURRENT_FILE).read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            known = ", ".join(self.names()) or "none"
            raise UnknownBankError(
                f"bank {name!r} does not exist in {self.root} (banks there: {known}); create it with "
                f"`modgate bank add {name} FILE --category CATEGORY` or `modgate bank import {name} LIST`"
            ) from None
        return bank_dir / current

    def info(self, name: str) -> BankInfo:
        path = self.current_dir(name)
        manifest = read_manifest(path)
        return BankInfo(
            name=name,
            generation=int(manifest["generation"]),
            entries=int(manifest["entries"]),
            signals={k: int(v) for k, v in manifest["signals"].items()},
            written_at=str(manifest.get("written_at", "")),
            path=path,
        )

    def iter_entries(self, name: str) -> Iterator[BankEntry]:
        with (self.current_dir(name) / ENTRIES).open(encoding="utf-8", newline="") as handle:
            next(handle)  # header
            for line in handle:
                yield BankEntry.from_row(line)

    def export_csv(self, name: str, out: BinaryIO) -> int:
        """Copy the bank, as a hash list with a header, to `out`; returns the entry count."""
        path = self.current_dir(name)
        with (path / ENTRIES).open("rb") as handle:
            shutil.copyfileobj(handle, out, 1 << 20)
        return int(read_manifest(path)["entries"])

    # --- writing -----------------------------------------------------------------------------

    def create(self, name: str) -> ChangeReport:
        """An empty bank (no-op when it exists)."""
        with self._locked(name):
            if (self.root / name / CURRENT_FILE).is_file():
                return ChangeReport(bank=name, generation=self.info(name).generation)
            generation = self._publish(name, SnapshotData.empty(), action="create")
        return ChangeReport(bank=name, generation=generation)

    def add_entries(self, name: str, entries: Iterable[BankEntry], *, action: str = "add") -> ChangeReport:
        """Add entries (creating the bank if needed); hashes already banked are skipped."""
        started = time.perf_counter()
        incoming = list(entries)  # consume first: an input that fails part-way publishes nothing
        with self._locked(name):
            base = self._base(name)
            fresh, duplicates = _new_only(base, incoming)
            ids = _entry_ids(base, fresh)
            data = base.appended(fresh, ids)
            generation = self._publish(name, data, action=action)
        return ChangeReport(
            bank=name,
            generation=generation,
            added=len(fresh),
            duplicates=duplicates,
            entries=len(data),
            seconds=time.perf_counter() - started,
            added_ids=tuple(ids),
        )

    def import_list(self, name: str, path: Path, defaults: ListDefaults | None = None) -> ChangeReport:
        """All of a ThreatExchange/HMA list, or nothing (ListError names the bad line)."""
        started = time.perf_counter()
        check_bank_name(name)
        reader = ListReader(Path(path), defaults or ListDefaults(added_at=utc_now(), source=Path(path).stem))
        report = self.add_entries(name, (entry for _, entry in reader.entries()), action="import")
        return ChangeReport(
            **{
                **report.__dict__,
                "negative_skipped": reader.negative_skipped,
                "seconds": time.perf_counter() - started,
                "added_ids": (),
            }
        )

    def remove(self, name: str, entry_ids: Iterable[str]) -> ChangeReport:
        wanted = list(dict.fromkeys(entry_ids))
        with self._locked(name):
            base = read_snapshot(self.current_dir(name))
            drop = np.isin(base.ids, np.array([w.encode() for w in wanted]))
            found = {i.decode() for i in base.ids[drop]}
            missing = [w for w in wanted if w not in found]
            if missing:
                raise BankError(
                    f"bank {name!r} has no entry {', '.join(missing)}; nothing was removed "
                    f"(see `modgate bank list {name}`)"
                )
            data = base.without(drop)
            generation = self._publish(name, data, action="remove")
        return ChangeReport(bank=name, generation=generation, removed=int(drop.sum()), entries=len(data))

    def _base(self, name: str) -> SnapshotData:
        if not (self.root / name / CURRENT_FILE).is_file():
            return SnapshotData.empty()
        return read_snapshot(self.current_dir(name))

    @contextlib.contextmanager
    def _locked(self, name: str) -> Iterator[None]:
        bank_dir = self.root / check_bank_name(name)
        try:
            bank_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BankError(
                f"cannot create bank directory {bank_dir} ({exc.strerror}); check MODGATE_BANK_DIR"
            ) from None
        with (bank_dir / ".lock").open("a") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)

    def _generations(self, bank_dir: Path) -> list[int]:
        return sorted(int(m.group(1)) for p in bank_dir.iterdir() if (m := _GENERATION.match(p.name)))

    def _publish(self, name: str, data: SnapshotData, *, action: str) -> int:
        bank_dir = self.root / name
        generation = max(self._generations(bank_dir), default=0) + 1
        final = bank_dir / f"g{generation:08d}"
        tmp = bank_dir / f".{final.name}.{os.getpid()}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            data.write(
                tmp,
                {"bank": name, "generation": generation, "written_at": utc_now(), "written_by": action},
            )
            os.rename(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        _fsync_dir(bank_dir)
        _atomic_write(bank_dir / CURRENT_FILE, final.name + "\n")
        _atomic_write(self.root / VERSION_FILE, f"{time.time_ns()} {name} {generation}\n")
        for old in self._generations(bank_dir):
            if old < generation - KEEP_PREVIOUS:
                shutil.rmtree(bank_dir / f"g{old:08d}", ignore_errors=True)
        return generation


def _new_only(base: SnapshotData, incoming: list[BankEntry]) -> tuple[list[BankEntry], int]:
    """The entries whose hash is neither banked nor repeated earlier in `incoming`, with ids."""
    keep = np.ones(len(incoming), dtype=bool)
    kinds = np.fromiter((e.signal_type.code for e in incoming), dtype=np.uint8, count=len(incoming))
    for kind in SignalType:
        picked = np.flatnonzero(kinds == kind.code)
        if not len(picked):
            continue
        raw = bytes.fromhex("".join(incoming[i].hash for i in picked))
        keys = np.frombuffer(raw, dtype=np.uint8).reshape(-1, kind.nbytes).view(f"S{kind.nbytes}").ravel()
        first = np.zeros(len(keys), dtype=bool)
        first[np.unique(keys, return_index=True)[1]] = True
        banked = base.codes[kind]
        if len(banked):
            first &= ~np.isin(keys, np.ascontiguousarray(banked).view(f"S{kind.nbytes}").ravel())
        keep[picked] = first
    fresh = [e for e, k in zip(incoming, keep, strict=True) if k]
    return fresh, len(incoming) - len(fresh)


def _entry_ids(base: SnapshotData, entries: list[BankEntry]) -> list[str]:
    """The entries' own ids where they are new to the bank, fresh random ones elsewhere."""
    ids = np.array([e.entry_id.encode() for e in entries] or [b""])[: len(entries)]
    ids = ids.astype(f"S{max(ids.dtype.itemsize, 16)}")

    def clashes() -> np.ndarray:
        clash = (ids == b"") | np.isin(ids, base.ids)
        clash[np.setdiff1d(np.arange(len(ids)), np.unique(ids, return_index=True)[1])] = True
        return clash

    clash = clashes()
    while clash.any():  # 64 random bits: a second round practically never happens
        ids[clash] = [i.encode() for i in new_entry_ids(int(clash.sum()))]
        clash = clashes()
    return [i.decode() for i in ids.tolist()]
