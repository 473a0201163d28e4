"""The readers' side: lookups by PDQ (distance, quality floor) and by MD5/SHA-256, and hot reload."""

from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path

import numpy as np

from modgate.banks.entries import BankEntry
from modgate.banks.matcher import MAX_HITS_PER_FRAME, BankMatcher
from modgate.banks.pdq import pdq_frame
from modgate.banks.signals import SignalType
from modgate.banks.store import BankStore
from tests.modgate.banks.policies import policy_with_banks


def random_codes(count: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, 32), dtype=np.uint8)


def flip(code: np.ndarray, bits: int) -> np.ndarray:
    out = code.copy()
    for bit in range(bits):
        out[bit // 8] ^= 1 << (bit % 8)
    return out


def pdq_entries(codes: np.ndarray, **meta: object) -> list[BankEntry]:
    return [
        BankEntry("", SignalType.PDQ, code.tobytes().hex(), content_ms=1000 * i, **meta)  # type: ignore[arg-type]
        for i, code in enumerate(codes)
    ]


def test_pdq_lookup_honours_each_banks_distance_and_quality_floor(tmp_path: Path) -> None:
    store = BankStore(tmp_path)
    codes = random_codes(3, seed=1)
    store.add_entries("strict", pdq_entries(codes[:1], category="violence"))
    store.add_entries("loose", pdq_entries(codes, category="violence"))
    matcher = BankMatcher(tmp_path)
    policy = policy_with_banks(
        {
            "strict": {"category": "violence", "pdq_max_distance": 10},
            "loose": {"category": "hate", "pdq_max_distance": 31, "pdq_min_quality": 80},
        }
    )
    queries = np.stack([flip(codes[0], 20), flip(codes[1], 31), flip(codes[2], 32), codes[0]])
    lookup = matcher.match_pdq(queries, np.array([100, 100, 100, 79]), policy.banks)
    hits = lookup.hits
    assert lookup.notes == [] and lookup.banks["loose"].entries == 3
    assert [(h.bank, h.frame, h.distance, h.entry.content_ms) for h in hits] == [
        ("loose", 0, 20, 0),  # 20 bits: over strict's 10
        ("loose", 1, 31, 1000),  # exactly the threshold: a match
        ("strict", 3, 0, 0),  # quality 79: under loose's floor of 80, fine for strict's 50
    ]


def test_a_frame_keeps_only_its_closest_entries_per_bank(tmp_path: Path) -> None:
    base = random_codes(1, seed=2)[0]
    near = np.stack([flip(base, d) for d in range(0, 2 * MAX_HITS_PER_FRAME)])
    BankStore(tmp_path).add_entries("many", pdq_entries(near))
    matcher = BankMatcher(tmp_path)
    hits = matcher.match_pdq(
        base[None, :], np.array([100]), policy_with_banks({"many": {"category": "hate"}}).banks
    ).hits
    assert [h.distance for h in hits] == list(range(MAX_HITS_PER_FRAME))


def test_policy_bank_missing_from_the_directory_is_a_note(tmp_path: Path) -> None:
    matcher = BankMatcher(tmp_path / "empty")
    lookup = matcher.match_pdq(
        random_codes(1, 3), np.array([100]), policy_with_banks({"gone": {"category": "hate"}}).banks
    )
    assert lookup.hits == [] and lookup.notes == [
        f"bank 'gone' named by the policy is not in the bank directory {tmp_path / 'empty'}"
    ]


def test_exact_lookup_by_md5_and_sha256(tmp_path: Path) -> None:
    store = BankStore(tmp_path)
    data = b"a banked upload"
    md5, sha = hashlib.md5(data).hexdigest(), hashlib.sha256(data).hexdigest()
    store.add_entries(
        "files",
        [
            BankEntry("", SignalType.MD5, md5, content_id="up-1"),
            BankEntry("", SignalType.SHA256, sha, content_id="up-1"),
            BankEntry("", SignalType.MD5, hashlib.md5(b"other").hexdigest(), content_id="up-2"),
        ],
    )
    matcher = BankMatcher(tmp_path, signals={SignalType.MD5, SignalType.SHA256})
    hits = matcher.match_exact(md5=md5.upper(), sha256=sha)
    assert sorted((h.bank, h.signal_type, h.entry.content_id) for h in hits) == [
        ("files", SignalType.MD5, "up-1"),
        ("files", SignalType.SHA256, "up-1"),
    ]
    assert matcher.match_exact(md5=hashlib.md5(b"unbanked").hexdigest()) == []
    assert matcher.match_exact(md5=md5, banks=["elsewhere"]) == []
    assert matcher.banks["files"].pdq is None  # an exact-only reader builds no PDQ index


def test_readers_see_a_writers_change_and_never_a_half_written_bank(tmp_path: Path) -> None:
    store = BankStore(tmp_path)
    codes = random_codes(401, seed=4)
    store.add_entries("live", pdq_entries(codes[:1]))
    matcher = BankMatcher(tmp_path, reload_interval_s=0.05)
    rules = policy_with_banks({"live": {"category": "hate"}}).banks
    assert matcher.refresh() is False  # nothing changed since the constructor loaded it

    seen: set[int] = set()
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            matcher.maybe_refresh()
            bank = matcher.banks["live"]
            seen.add(bank.entries)
            assert len(bank.pdq) == bank.entries  # index and metadata always from one snapshot
            time.sleep(0.005)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for step in range(1, 5):
            store.add_entries("live", pdq_entries(codes[100 * step - 99 : 100 * step + 1]))
            time.sleep(0.2)
    finally:
        stop.set()
        reader.join(timeout=30)
    matcher.refresh()
    assert matcher.banks["live"].entries == 401 and matcher.banks["live"].generation == 5
    assert seen <= {1, 101, 201, 301, 401} and len(seen) >= 2
    hits = matcher.match_pdq(codes[-1:], np.array([100]), rules).hits
    assert [h.distance for h in hits] == [0]

    removed = store.remove("live", [hits[0].entry.entry_id])
    assert removed.removed == 1 and matcher.refresh() is True
    assert matcher.match_pdq(codes[-1:], np.array([100]), rules).hits == []


def test_flat_frames_are_low_quality_and_not_matched(tmp_path: Path) -> None:
    grey = np.full((180, 320, 3), 128, dtype=np.uint8)
    code, quality = pdq_frame(grey)
    assert quality < 50
    BankStore(tmp_path).add_entries("flat", [BankEntry("", SignalType.PDQ, code.hex())])
    hits = (
        BankMatcher(tmp_path)
        .match_pdq(
            np.frombuffer(code, np.uint8)[None, :],
            np.array([quality]),
            policy_with_banks({"flat": {"category": "hate"}}).banks,
        )
        .hits
    )
    assert hits == []  # the very same hash, but under the quality floor
