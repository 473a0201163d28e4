"""VerdictSpool: verdicts the caller received while the store was down, kept until it is back.

Append-only JSON lines (VerdictRecord.to_json), one segment file per writing process
(`<pid>-<start>.jsonl`), each append written and fsynced before the caller gets the verdict:
it survives the gateway being killed, and a power cut. drain() moves segments into the store
oldest first (commit_many skips records already stored, so a drain interrupted half-way and
run again stores nothing twice) and deletes each segment once all of it is stored. A torn last
line (the process died mid-write, so that caller got no verdict) is skipped with a warning.
Draining takes an exclusive lock on the directory: two drainers never interleave.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from modgate.store.records import VerdictRecord
from modgate.store.store import VerdictStore

log = logging.getLogger("modgate.store.spool")
DRAIN_BATCH = 500


class VerdictSpool:
    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self._lock = threading.Lock()
        self._segment: Path | None = None

    def append(self, record: VerdictRecord) -> None:
        line = (record.to_json() + "\n").encode("utf-8")
        with self._lock:
            if self._segment is None:
                self.directory.mkdir(parents=True, exist_ok=True)
                self._segment = self.directory / f"{os.getpid()}-{time.time_ns()}.jsonl"
            fd = os.open(self._segment, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)

    def segments(self) -> list[Path]:
        if not self.directory.is_dir():
            return []
        return sorted(self.directory.glob("*.jsonl"), key=lambda p: p.stat().st_mtime_ns)

    def pending(self) -> int:
        """Records waiting (lines in every segment)."""
        return sum(sum(1 for _ in _lines(path)) for path in self.segments())

    def drain(self, store: VerdictStore) -> int:
        """Move every spooled record into the store; returns how many were new there. Raises
        StoreUnavailable (segments left as they are) when the store is still down."""
        if not self.segments():
            return 0
        stored = 0
        with open(self.directory / ".drain-lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            with self._lock:
                self._segment = None  # new appends go to a new segment; this one can go
            for path in self.segments():
                if _written_elsewhere(path):
                    continue
                stored += self._drain_segment(store, path)
        return stored

    def _drain_segment(self, store: VerdictStore, path: Path) -> int:
        stored, batch = 0, []
        for number, line in enumerate(_lines(path), 1):
            try:
                batch.append(VerdictRecord.from_json(line))
            except (ValueError, TypeError, KeyError) as exc:
                log.warning("spool %s line %d is not a verdict record (%s): skipped", path.name, number, exc)
                continue
            if len(batch) >= DRAIN_BATCH:
                stored += store.commit_many(batch)
                batch = []
        if batch:
            stored += store.commit_many(batch)
        path.unlink()
        log.info("spool %s drained into the verdict store: %d new verdicts", path.name, stored)
        return stored


def _written_elsewhere(path: Path) -> bool:
    """A segment another live process on this host may still append to (its pid is alive);
    it drains its own."""
    pid = path.name.split("-", 1)[0]
    if not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _lines(path: Path) -> Iterator[str]:
    with open(path, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            if line.strip():
                yield line
