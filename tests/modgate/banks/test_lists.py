"""Hash lists in the ThreatExchange/HMA formats: import, export, round trip, and bad input."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from threatexchange.signal_type.pdq.pdq_utils import PDQ_CONFIDENT_MATCH_THRESHOLD
from threatexchange.signal_type.pdq.signal import PdqSignal

from modgate.banks.listfile import ListDefaults, ListError
from modgate.banks.signals import SignalType
from modgate.banks.store import BankStore
from modgate.policy import PDQ_MAX_DISTANCE, PDQ_MIN_QUALITY

PDQ_A, PDQ_B = PdqSignal.get_examples()[0], PdqSignal.get_examples()[12]
MD5 = hashlib.md5(b"clip").hexdigest()
SHA = hashlib.sha256(b"clip").hexdigest()


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_are_hmas() -> None:
    assert PDQ_MAX_DISTANCE == PDQ_CONFIDENT_MATCH_THRESHOLD == 31
    assert PDQ_MIN_QUALITY == PdqSignal.QUALITY_THRESHOLD == 50


def test_threatexchange_dataset_csv_imports_with_tags_as_category(tmp_path: Path) -> None:
    listing = write(
        tmp_path,
        "collab.csv",
        "signal_type,signal_str,collab,category,tags\n"
        f"pdq,{PDQ_A},Sample Collab,POSITIVE_CLASS,violence\n"
        f"video_md5,{MD5.upper()},Sample Collab,INVESTIGATION_SEED,violence gore\n"
        f"pdq,{PDQ_B},Sample Collab,NEGATIVE_CLASS,\n",
    )
    store = BankStore(tmp_path / "banks")
    report = store.import_list("known", listing)
    assert (report.added, report.negative_skipped, report.duplicates) == (2, 1, 0)
    entries = list(store.iter_entries("known"))
    assert [(e.signal_type, e.hash, e.category, e.source) for e in entries] == [
        (SignalType.PDQ, PDQ_A, "violence", "Sample Collab"),
        (SignalType.MD5, MD5, "violence gore", "Sample Collab"),
    ]
    assert all(len(e.entry_id) == 16 and e.added_at.endswith("Z") for e in entries)


def test_file_exchange_lines_and_bare_hashes(tmp_path: Path) -> None:
    store = BankStore(tmp_path / "banks")
    lines = write(tmp_path, "signals.txt", f"# a comment\n\npdq {PDQ_A}\nvideo_sha256 {SHA}\n")
    assert store.import_list("lines", lines).added == 2
    bare = write(tmp_path, "bare.txt", f"{MD5}\n")
    defaults = ListDefaults(added_at="2026-01-01T00:00:00Z", source="ncmec", signal_type=SignalType.MD5)
    assert store.import_list("lines", bare, defaults).added == 1
    kinds = {(e.signal_type, e.source) for e in store.iter_entries("lines")}
    assert kinds == {(SignalType.PDQ, "signals"), (SignalType.SHA256, "signals"), (SignalType.MD5, "ncmec")}


def test_tsv_with_header_aliases(tmp_path: Path) -> None:
    listing = write(tmp_path, "list.tsv", f"type\thash\tnote\nHASH_PDQ\t{PDQ_A}\tfrom the tsv\n")
    store = BankStore(tmp_path / "banks")
    store.import_list("tsv", listing)
    (entry,) = store.iter_entries("tsv")
    assert (entry.signal_type, entry.hash, entry.note) == (SignalType.PDQ, PDQ_A, "from the tsv")


def test_export_then_import_round_trips_every_field(tmp_path: Path) -> None:
    store = BankStore(tmp_path / "banks")
    listing = write(
        tmp_path,
        "full.csv",
        "signal_type,signal_str,collab,category,tags,entry_id,note,added_at,content_id,content_ms\n"
        f"pdq,{PDQ_A},gifct,POSITIVE_CLASS,terror,e-1,"
        '"quoted, with ""commas""",2025-05-01T10:00:00Z,vid-9,4000\n'
        f"video_md5,{MD5},gifct,POSITIVE_CLASS,terror,e-2,,2025-05-01T10:00:00Z,vid-9,\n",
    )
    store.import_list("src", listing)
    exported = tmp_path / "export.csv"
    with exported.open("wb") as out:
        assert store.export_csv("src", out) == 2
    store.import_list("copy", exported)
    assert list(store.iter_entries("copy")) == list(store.iter_entries("src"))
    first = next(store.iter_entries("copy"))
    assert (first.entry_id, first.note, first.content_ms) == ("e-1", 'quoted, with "commas"', 4000)


def test_duplicates_are_skipped_within_and_across_imports(tmp_path: Path) -> None:
    store = BankStore(tmp_path / "banks")
    listing = write(tmp_path, "dups.txt", f"pdq {PDQ_A}\npdq {PDQ_A}\npdq {PDQ_B}\n")
    first = store.import_list("dups", listing)
    again = store.import_list("dups", listing)
    assert (first.added, first.duplicates) == (2, 1)
    assert (again.added, again.duplicates, again.entries) == (0, 3, 2)


BAD_LINES = [
    (f"pdq {PDQ_A}\npdq {PDQ_A[:-1]}\n", 2, "not a valid pdq hash"),
    (f"pdq {PDQ_A}\n\nmd6 {MD5}\n", 3, "unknown signal type 'md6'"),
    (f"pdq {PDQ_A}\npdq {PDQ_A} extra\n", 2, "3 words"),
    (f"{PDQ_A}\n", 1, "a bare hash with no signal type"),
    (f"signal_type,signal_str\npdq,{PDQ_A}\npdq,{PDQ_B},x\n", 3, "3 fields where the header has 2"),
    (f"signal_type,signal_str,category\npdq,{PDQ_A},MAYBE\n", 2, "not a ThreatExchange opinion"),
    (f"signal_type,signal_str,content_ms\n\n# c\npdq,{PDQ_A},-5\n", 4, "content_ms '-5'"),
    (f"signal_type,signal_str,colour\npdq,{PDQ_A},red\n", 1, "unknown column(s) ['colour']"),
]


@pytest.mark.parametrize(("text", "line", "problem"), BAD_LINES)
def test_a_malformed_line_is_named_and_the_bank_is_unchanged(
    tmp_path: Path, text: str, line: int, problem: str
) -> None:
    store = BankStore(tmp_path / "banks")
    store.import_list("known", write(tmp_path, "good.txt", f"video_md5 {MD5}\n"))
    before = store.info("known")
    exported_before = tmp_path / "before.csv"
    with exported_before.open("wb") as out:
        store.export_csv("known", out)

    bad = write(tmp_path, "bad.txt", text)
    with pytest.raises(ListError) as caught:
        store.import_list("known", bad)
    message = str(caught.value)
    assert f"{bad} line {line}: " in message and problem in message, message
    assert "nothing was imported" in message

    after = store.info("known")
    assert (after.generation, after.entries, after.path) == (before.generation, before.entries, before.path)
    exported_after = tmp_path / "after.csv"
    with exported_after.open("wb") as out:
        store.export_csv("known", out)
    assert exported_after.read_bytes() == exported_before.read_bytes()


def test_a_bad_list_never_creates_a_missing_bank(tmp_path: Path) -> None:
    store = BankStore(tmp_path / "banks")
    with pytest.raises(ListError):
        store.import_list("fresh", write(tmp_path, "bad.txt", f"pdq {PDQ_A}\npdq nothex\n"))
    assert store.names() == []


def test_hashes_are_stored_as_the_bytes_threatexchange_hex_spells(tmp_path: Path) -> None:
    store = BankStore(tmp_path / "banks")
    store.import_list("bytes", write(tmp_path, "one.txt", f"pdq {PDQ_A}\n"))
    codes = np.load(store.current_dir("bytes") / "pdq.npy")
    assert codes.shape == (1, 32) and codes[0].tobytes().hex() == PDQ_A
