"""The PDQ range search is exact: both backends return every code within the distance, no other."""

from __future__ import annotations

import numpy as np
import pytest

from modgate.banks.index import FlatIndex, MultiIndexHash, build_pdq_index
from modgate.banks.pdq import hamming


def planted(size: int, queries: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random codes, and queries made by flipping 0, 1, 2, ... random bits of banked codes."""
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 256, (size, 32), dtype=np.uint8)
    picked = codes[rng.integers(0, size, queries)].copy()
    for flips, query in enumerate(picked):
        for bit in rng.choice(256, size=flips % 64, replace=False):
            query[bit // 8] ^= 1 << (bit % 8)
    return codes, picked


@pytest.mark.parametrize("radius", [0, 1, 15, 16, 17, 31, 32, 47, 63])
def test_both_backends_equal_brute_force(radius: int) -> None:
    codes, queries = planted(25_000, 64, seed=radius)
    reference = np.argwhere(hamming(queries[:, None, :], codes[None, :, :]) <= radius)
    for index in (FlatIndex(codes), MultiIndexHash(codes)):
        hits = index.search(queries, radius)
        found = np.stack([hits.query, hits.item], axis=1)
        assert sorted(map(tuple, found)) == sorted(map(tuple, reference)), (index.backend, radius)
        assert (hits.distance == hamming(queries[hits.query], codes[hits.item])).all()
        assert (np.diff(hits.query) >= 0).all()  # sorted by query, then distance
        same = np.diff(hits.query) == 0
        assert (np.diff(hits.distance)[same] >= 0).all()


def test_a_query_finds_each_near_code_once_even_when_close_in_many_chunks() -> None:
    codes, _ = planted(30_000, 1, seed=5)
    codes[7] = codes[3]
    codes[7, 0] ^= 0b1  # codes 3 and 7: distance 1, equal in 15 of 16 chunks
    hits = MultiIndexHash(codes).search(codes[3:4], 31)
    assert sorted(hits.item.tolist()) == [3, 7]
    assert sorted(hits.distance.tolist()) == [0, 1]


def test_choice_of_backend_and_empty_cases() -> None:
    small, _ = planted(100, 1, seed=1)
    assert build_pdq_index(small).backend == "faiss-flat"
    assert build_pdq_index(small, flat_max_codes=10).backend == "multi-index-hash"
    for index in (FlatIndex(small[:0]), MultiIndexHash(small[:0])):
        assert len(index.search(small[:3], 31)) == 0
    assert len(MultiIndexHash(small).search(small[:0], 31)) == 0
    with pytest.raises(ValueError, match=r"\(N, 32\) uint8"):
        MultiIndexHash(small).search(small[:, :16], 31)


@pytest.mark.parametrize("radius", [7, 31, 47])
def test_codes_at_the_radius_spread_as_evenly_as_possible_are_found(radius: int) -> None:
    """The hardest codes for the pair filter: the differing bits spread over the eight 32-bit
    chunks (and each chunk's two halves) as evenly as the distance allows, so the closest
    chunk is exactly radius // 8 bits off and its closest half radius // 16."""
    codes, _ = planted(25_000, 1, seed=radius)
    query = codes[11].copy()
    spread = [radius // 8 + (chunk < radius % 8) for chunk in range(8)]  # bits off per 32-bit chunk
    for chunk, flips in enumerate(spread):
        for bit in range(flips):  # alternate halves: 16 bits apart
            position = chunk * 32 + (bit % 2) * 16 + bit // 2
            query[position // 8] ^= 1 << (position % 8)
    assert int(hamming(query, codes[11])) == radius
    hits = MultiIndexHash(codes).search(query[None, :], radius)
    assert 11 in hits.item.tolist()
    assert hits.distance[hits.item.tolist().index(11)] == radius
