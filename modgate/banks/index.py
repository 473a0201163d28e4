"""Exact Hamming range search over 256-bit PDQ codes: every banked code within a distance.

Two exact backends, chosen by size (both return the same hits; a test holds them to it):

* small banks: faiss ``IndexBinaryFlat`` (threatexchange's PDQIndex2), an exhaustive C++ scan;
* large banks: multi-index hashing (Norouzi et al.), the scheme HMA's PDQMultiHashIndex uses,
  here over numpy tables. The code is cut into 16 chunks of 16 bits, each with a table
  sorted by chunk value. Two codes within distance r have one of their eight 32-bit chunks
  within r // 8 bits of each other (pigeonhole: otherwise the distance would be
  >= 8 * (r // 8 + 1) > r), and that 32-bit chunk has one of its two 16-bit halves within
  (r // 8) // 2 = r // 16 bits. So probing each table at the query's chunk and its
  (r // 16)-bit flips finds every code within r; of those candidates only the ones whose whole
  32-bit chunk is within r // 8 bits can be (the pair filter: each table keeps the other half
  of every row's 32-bit chunk beside it, in the table's order, so this reads the same runs the
  probe found), and the few left are verified on the full 256 bits. At r = 31: 17 probes per
  table, ~4,000 candidates per query in a 1M bank, ~20 after the pair filter.

Measured on 1,000,000 random codes and 32 queries at r = 31 (bench/banks.py, one core): faiss's
flat scan takes ~135 ms and faiss's own IndexBinaryMultiHash ~110 ms, the numpy tables ~4 ms,
hence the split. Verifying every candidate on 256 bits (one random 32-byte read each, ~130,000
of them) took ~10 ms; the pair filter reads 2 bytes per candidate from runs laid out together
and leaves a few hundred random reads. Nothing here loops over codes in Python.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Protocol

import faiss
import numpy as np

BITS = 256
TABLES = 16
CHUNK_VALUES = 1 << 16
PAIRS = TABLES // 2  # 32-bit chunks, each two neighbouring 16-bit ones
PARTNER = np.arange(TABLES) ^ 1  # table j's other half of its 32-bit chunk
# Below this many codes the flat scan answers 32 queries in well under a millisecond and
# needs no tables.
FLAT_MAX_CODES = 20_000

# One OpenMP thread: a request's handful of queries is too small to split, and spinning
# threads steal the cores the models run on.
faiss.omp_set_num_threads(1)


@dataclass(frozen=True)
class RangeHits:
    """Every (query, code) pair within the distance, sorted by query, then distance."""

    query: np.ndarray  # int64
    item: np.ndarray  # int64: row in the indexed codes
    distance: np.ndarray  # int32

    @classmethod
    def empty(cls) -> RangeHits:
        return cls(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.int32))

    @classmethod
    def sorted(cls, query: np.ndarray, item: np.ndarray, distance: np.ndarray) -> RangeHits:
        order = np.lexsort((item, distance, query))
        return cls(
            query[order].astype(np.int64), item[order].astype(np.int64), distance[order].astype(np.int32)
        )

    def __len__(self) -> int:
        return len(self.query)


class PdqIndex(Protocol):
    backend: str

    def __len__(self) -> int: ...

    def search(self, queries: np.ndarray, max_distance: int) -> RangeHits: ...

    def nbytes(self) -> int: ...


def _check(queries: np.ndarray, max_distance: int) -> np.ndarray:
    if queries.ndim != 2 or queries.shape[1] != BITS // 8 or queries.dtype != np.uint8:
        raise ValueError(f"queries must be (N, 32) uint8 PDQ codes; got {queries.shape} {queries.dtype}")
    if not 0 <= max_distance < BITS:
        raise ValueError(f"max_distance must be within [0, {BITS}); got {max_distance}")
    return np.ascontiguousarray(queries)


class FlatIndex:
    """faiss IndexBinaryFlat: an exhaustive scan, the fastest choice for small banks."""

    backend = "faiss-flat"

    def __init__(self, codes: np.ndarray) -> None:
        self._size = len(codes)
        self._index = faiss.IndexBinaryFlat(BITS)
        if self._size:
            self._index.add(np.ascontiguousarray(codes, dtype=np.uint8))

    def __len__(self) -> int:
        return self._size

    def nbytes(self) -> int:
        return self._size * BITS // 8

    def search(self, queries: np.ndarray, max_distance: int) -> RangeHits:
        queries = _check(queries, max_distance)
        if not self._size or not len(queries):
            return RangeHits.empty()
        # faiss's binary range search keeps distances strictly below the radius.
        limits, distances, items = self._index.range_search(queries, max_distance + 1)
        query = np.repeat(np.arange(len(queries)), np.diff(limits.astype(np.int64)))
        return RangeHits.sorted(query, items, distances)


@functools.cache
def _probe_masks(flips: int) -> tuple[np.ndarray, np.ndarray]:
    """Every 16-bit mask with at most `flips` bits set (17 for one flip), ordered by bit count
    (the probed chunk's distance from the query's), and how many masks have each count."""
    values = np.arange(CHUNK_VALUES, dtype=np.int64)
    bits = np.bitwise_count(values)
    masks = values[bits <= flips]
    masks = masks[np.argsort(bits[masks], kind="stable")]
    return masks, np.bincount(bits[masks])


@dataclass(frozen=True)
class _Runs:
    """The table rows a search probes: one run of consecutive rows per (probe, query, table),
    in that order, as flat positions into the concatenated tables."""

    positions: np.ndarray  # int64 (candidates,)
    ends: np.ndarray  # int64 (runs,): cumulative run lengths
    lengths: np.ndarray  # int64 (runs,)


class MultiIndexHash:
    """Multi-index hashing over 16 sorted 16-bit chunk tables with a pair filter (see the
    module docstring)."""

    backend = "multi-index-hash"

    def __init__(self, codes: np.ndarray) -> None:
        self._codes = np.ascontiguousarray(codes, dtype=np.uint8)
        size = len(self._codes)
        self._codes64 = self._codes.view(np.uint64)  # (n, 4): 64-bit words for the verification
        chunks = self._codes.view(np.uint16)  # (n, 16)
        self._order = np.empty((TABLES, size), dtype=np.int32)  # table j: rows sorted by chunk j
        # table j, in the same order: chunk j ^ 1, the other half of the row's 32-bit chunk
        self._partner = np.empty((TABLES, size), dtype=np.uint16)
        self._starts = np.empty((TABLES, CHUNK_VALUES + 1), dtype=np.int64)  # where each value starts
        for table in range(TABLES):
            keys = np.ascontiguousarray(chunks[:, table])
            order = np.argsort(keys, kind="stable")  # radix sort for 16-bit keys
            self._order[table] = order
            np.take(np.ascontiguousarray(chunks[:, PARTNER[table]]), order, out=self._partner[table])
            self._starts[table, 0] = 0
            np.cumsum(np.bincount(keys, minlength=CHUNK_VALUES), out=self._starts[table, 1:])
        self._order_flat = self._order.ravel()
        self._partner_flat = self._partner.ravel()
        self._starts_flat = self._starts.ravel()

    def __len__(self) -> int:
        return len(self._codes)

    def nbytes(self) -> int:
        return self._codes.nbytes + self._order.nbytes + self._partner.nbytes + self._starts.nbytes

    def search(self, queries: np.ndarray, max_distance: int) -> RangeHits:
        queries = _check(queries, max_distance)
        size, count = len(self._codes), len(queries)
        if not size or not count:
            return RangeHits.empty()
        masks, per_flips = _probe_masks(max_distance // TABLES)
        runs = self._runs(queries, masks)
        if not len(runs.positions):
            return RangeHits.empty()
        keep = self._pair_filter(queries, runs, per_flips, max_distance // PAIRS)
        per_probe = count * TABLES
        query = (np.searchsorted(runs.ends, keep, side="right") % per_probe) // TABLES
        items = np.take(self._order_flat, runs.positions[keep])
        # The few survivors, verified on all 256 bits: one random read of 32 bytes each.
        words = np.take(self._codes64, items, axis=0)
        words ^= np.take(queries.view(np.uint64), query, axis=0)
        distance = np.bitwise_count(words).sum(axis=1, dtype=np.int32)
        near = distance <= max_distance
        query, items, distance = query[near], items[near].astype(np.int64), distance[near]
        # A code close in several chunks is found once per chunk: keep one of each pair.
        _, first = np.unique(query * size + items, return_index=True)
        return RangeHits.sorted(query[first], items[first], distance[first])

    def _runs(self, queries: np.ndarray, masks: np.ndarray) -> _Runs:
        """Where each (probe, query, table) run of table rows holding the probed chunk lies."""
        tables = np.arange(TABLES, dtype=np.int64)
        slots = (queries.view(np.uint16)[None, :, :].astype(np.int64) ^ masks[:, None, None]) + tables * (
            CHUNK_VALUES + 1
        )
        starts = self._starts_flat[slots]
        lengths = (self._starts_flat[slots + 1] - starts).ravel()
        ends = np.cumsum(lengths)
        bases = (starts + tables * len(self._codes)).ravel()
        positions = np.repeat(bases - (ends - lengths), lengths)
        positions += np.arange(int(ends[-1]), dtype=np.int64)
        return _Runs(positions, ends, lengths)

    def _pair_filter(
        self, queries: np.ndarray, runs: _Runs, per_flips: np.ndarray, pair_limit: int
    ) -> np.ndarray:
        """Candidates (indices into runs.positions) whose 32-bit chunk around the probed one is
        within pair_limit bits of the query's: the probed half's distance is its probe mask's
        bit count, the other half's is read beside the table, in the table's order."""
        partners = queries.view(np.uint16)[:, PARTNER]  # (queries, tables)
        diff = np.take(self._partner_flat, runs.positions)
        diff ^= np.repeat(
            np.broadcast_to(partners, (int(per_flips.sum()), *partners.shape)).ravel(), runs.lengths
        )
        bits = np.bitwise_count(diff)
        # Runs come probe by probe, probes by bit count: add each count to its slice of candidates.
        group_ends = np.cumsum(per_flips) * partners.size - 1  # the last run of each bit count
        for flips in range(1, len(per_flips)):
            bits[runs.ends[group_ends[flips - 1]] : runs.ends[group_ends[flips]]] += flips
        return np.flatnonzero(bits <= pair_limit)


def build_pdq_index(codes: np.ndarray, *, flat_max_codes: int = FLAT_MAX_CODES) -> PdqIndex:
    """The exact index for `codes` ((N, 32) uint8): flat for small banks, multi-index hashing above."""
    if codes.ndim != 2 or codes.shape[1] != BITS // 8:
        raise ValueError(f"PDQ codes must be (N, 32) uint8; got {codes.shape}")
    if len(codes) <= flat_max_codes:
        return FlatIndex(codes)
    return MultiIndexHash(codes)
