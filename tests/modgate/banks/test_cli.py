"""`modgate bank ...` as a user runs it (a real `python -m modgate.tools.cli` process)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from modgate.banks.signals import SignalType
from modgate.banks.store import BankStore
from tests.modgate.banks.clips import make_clip

REPO = Path(__file__).resolve().parents[3]


def modgate(bank_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODGATE_")}
    env["MODGATE_BANK_DIR"] = str(bank_dir)
    return subprocess.run(
        [sys.executable, "-m", "modgate.tools.cli", "bank", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "clip.mp4"
    return make_clip(path, seed=7, duration_s=6.0, width=640, height=360)


def test_add_list_export_import_remove(tmp_path: Path, clip: Path) -> None:
    banks = tmp_path / "banks"
    added = modgate(banks, "add", "known", str(clip), "--category", "violence", "--note", "takedown 41")
    assert added.returncode == 0, added.stderr
    assert f"{clip}: video, 6 frame(s) hashed, 6 PDQ kept; md5 " in added.stdout
    assert "bank known: added 8 entries" in added.stdout and "generation 1" in added.stdout

    listed = modgate(banks, "list")
    assert listed.returncode == 0 and listed.stdout.startswith("known ")
    assert "8 entries (pdq 6, md5 1, sha256 1)" in listed.stdout
    entries = modgate(banks, "list", "known", "--limit", "3")
    assert entries.returncode == 0
    assert "... 5 more" in entries.stdout and "takedown 41" in entries.stdout and "clip.mp4" in entries.stdout

    again = modgate(banks, "add", "known", str(clip), "--category", "violence")
    assert "added 0 entries, 8 already banked (skipped)" in again.stdout

    exported = tmp_path / "known.csv"
    assert modgate(banks, "export", "known", "-o", str(exported)).returncode == 0
    assert exported.read_text().startswith("signal_type,signal_str,collab,category,tags,entry_id,")
    lines = modgate(banks, "export", "known", "--format", "lines")
    assert lines.stdout.count("\n") == 8 and "video_md5 " in lines.stdout and "pdq " in lines.stdout

    imported = modgate(banks, "import", "copy", str(exported))
    assert imported.returncode == 0 and "bank copy: imported 8 entries" in imported.stdout
    store = BankStore(banks)
    assert list(store.iter_entries("copy")) == list(store.iter_entries("known"))

    pdq_id = next(e.entry_id for e in store.iter_entries("known") if e.signal_type is SignalType.PDQ)
    removed = modgate(banks, "remove", "known", pdq_id)
    assert removed.returncode == 0 and "removed 1; 7 entries, generation 3" in removed.stdout
    missing = modgate(banks, "remove", "known", "no-such-entry")
    assert missing.returncode == 1
    assert "bank 'known' has no entry no-such-entry; nothing was removed" in missing.stderr
    assert store.info("known").entries == 7


def test_bad_input_fails_with_the_reason_and_changes_nothing(tmp_path: Path, clip: Path) -> None:
    banks = tmp_path / "banks"
    assert modgate(banks, "add", "known", str(clip), "--category", "violence").returncode == 0
    before = BankStore(banks).info("known")

    bad = tmp_path / "bad.csv"
    bad.write_text("signal_type,signal_str\npdq," + "0" * 64 + "\nvideo_md5,xyz\n")
    failed = modgate(banks, "import", "known", str(bad))
    assert failed.returncode == 1
    assert f"modgate bank import: {bad} line 3: 'xyz' is not a valid video_md5 hash" in failed.stderr
    assert "nothing was imported" in failed.stderr

    text = tmp_path / "notes.txt"
    text.write_text("not a video")
    not_media = modgate(banks, "add", "known", str(text), "--category", "violence")
    assert not_media.returncode == 1 and "is neither a video the gateway can split" in not_media.stderr

    unknown = modgate(banks, "list", "nosuch")
    assert unknown.returncode == 1 and "bank 'nosuch' does not exist" in unknown.stderr
    bad_name = modgate(banks, "add", "Bad Name", str(clip), "--category", "violence")
    assert bad_name.returncode == 1 and "bank name 'Bad Name' is not valid" in bad_name.stderr
    assert modgate(banks, "add", "known").returncode == 2  # argparse: FILE missing

    after = BankStore(banks).info("known")
    assert (after.generation, after.entries) == (before.generation, before.entries)


def test_bank_dir_option_wins_over_the_environment(tmp_path: Path) -> None:
    listing = tmp_path / "list.txt"
    listing.write_text("video_md5 " + "a" * 32 + "\n")
    chosen = tmp_path / "chosen"
    result = modgate(tmp_path / "env-dir", "import", "known", str(listing), "--bank-dir", str(chosen))
    assert result.returncode == 0, result.stderr
    assert BankStore(chosen).names() == ["known"] and BankStore(tmp_path / "env-dir").names() == []
