"""Exact Hamming range search over 256-bit PDQ codes: every banked code within a distance.

Two exact backends, chosen by size (both return the same hits; a test holds them to it):

* small banks: faiss ``IndexBinaryFlat`` (threatexchange's PDQIndex2), an exhaustive C++ scan;
* large banks: multi-index hashing (Norouzi et al.), the scheme HMA's PDQMultiHashIndex uses,
  here over numpy tables. The code is cut into 16 chunks of 16 bits, each with a table
  sorted by chunk value. Two codes within distance r have some chunk within r // 16 bits of
  each other (otherwise the distance would be >= 16 * (r // 16 + 1) > r), so probing each
  table at the query's chunk and its (r // 16)-bit flips finds every candidate; candidates
  are then verified on the full 256 bits. At r = 31 that is 17 probes per table.

Measured on 1,000,000 random codes and 32 queries at r = 31 (bench/banks.py): faiss's flat
scan takes ~250 ms and faiss's own IndexBinaryMultiHash ~600 ms on this machine, the numpy
tables a few ms, hence the split. Nothing here loops over codes in Python.
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
def _flip_masks(flips: int) -> np.ndarray:
    """Every 16-bit mask with at most `flips` bits set (17 for one flip)."""
    values = np.arange(CHUNK_VALUES, dtype=np.uint32)
    return values[np.bitwise_count(values) <= flips].astype(np.int64)


class MultiIndexHash:
    """Multi-index hashing over 16 sorted 16-bit chunk tables (see the module docstring)."""

    backend = "multi-index-hash"

    def __init__(self, codes: np.ndarray) -> None:
        self._codes = np.ascontiguousarray(codes, dtype=np.uint8)
        size = len(self._codes)
        self._codes64 = self._codes.view(np.uint64)  # (n, 4): 64-bit words for the verification
        chunks = self._codes.view(np.uint16)  # (n, 16)
        self._order = np.empty((TABLES, size), dtype=np.int32)  # table j: rows sorted by chunk j
        self._starts = np.empty((TABLES, CHUNK_VALUES + 1), dtype=np.int64)  # where each value starts
        for table in range(TABLES):
            keys = np.ascontiguousarray(chunks[:, table])
            self._order[table] = np.argsort(keys, kind="stable")  # radix sort for 16-bit keys
            self._starts[table, 0] = 0
            np.cumsum(np.bincount(keys, minlength=CHUNK_VALUES), out=self._starts[table, 1:])
        self._order_flat = self._order.ravel()
        self._starts_flat = self._starts.ravel()

    def __len__(self) -> int:
        return len(self._codes)

    def nbytes(self) -> int:
        return self._codes.nbytes + self._order.nbytes + self._starts.nbytes

    def search(self, queries: np.ndarray, max_distance: int) -> RangeHits:
        queries = _check(queries, max_distance)
        size, count = len(self._codes), len(queries)
        if not size or not count:
            return RangeHits.empty()
        masks = _flip_masks(max_distance // TABLES)
        tables = np.arange(TABLES, dtype=np.int64)[None, :, None]
        # (query, table, probe) -> the run of table rows holding that chunk value
        slots = (queries.view(np.uint16)[:, :, None].astype(np.int64) ^ masks[None, None, :]) + tables * (
            CHUNK_VALUES + 1
        )
        starts = self._starts_flat[slots]
        lengths = (self._starts_flat[slots + 1] - starts).ravel()
        total = int(lengths.sum())
        if not total:
            return RangeHits.empty()
        run_base = (starts + tables * size).ravel() - (np.cumsum(lengths) - lengths)
        positions = np.repeat(run_base, lengths)
        positions += np.arange(total, dtype=np.int64)
        items = np.take(self._order_flat, positions)
        per_query = lengths.reshape(count, -1).sum(axis=1)
        query = np.repeat(np.arange(count, dtype=np.int64), per_query)
        # The verification: one random read of 32 bytes per candidate, the search's main cost.
        words = np.take(self._codes64, items, axis=0)
        words ^= np.repeat(queries.view(np.uint64), per_query, axis=0)
        bits = np.bitwise_count(words)
        distance = bits[:, 0].astype(np.int32)
        distance += bits[:, 1]
        distance += bits[:, 2]
        distance += bits[:, 3]
        near = distance <= max_distance
        query, items, distance = query[near], items[near].astype(np.int64), distance[near]
        # A code close in several chunks is found once per chunk: keep one of each pair.
        _, first = np.unique(query * size + items, return_index=True)
        return RangeHits.sorted(query[first], items[first], distance[first])


def build_pdq_index(codes: np.ndarray, *, flat_max_codes: int = FLAT_MAX_CODES) -> PdqIndex:
    """The exact index for `codes` ((N, 32) uint8): flat for small banks, multi-index hashing above."""
    if codes.ndim != 2 or codes.shape[1] != BITS // 8:
        raise ValueError(f"PDQ codes must be (N, 32) uint8; got {codes.shape}")
    if len(codes) <= flat_max_codes:
        return FlatIndex(codes)
    return MultiIndexHash(codes)
