"""`modgate verdicts list/show/prune` and `modgate replay` as a person runs them: through
`python -m modgate.tools.cli`, on a store of synthetic verdicts (gateway/replay/synthetic.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from gateway.replay.synthetic import synthetic_records
from modgate.policy import load_policies
from modgate.store import StoreSettings, VerdictRecord, VerdictStore
from modgate.tools.store_args import parse_since, shown_url

DEFAULT = load_policies()["default"]
COUNT = 40
SPACING_S = 600.0


@pytest.fixture(scope="module")
def store_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The store the commands read (SQLite; the shared store_url fixture can stand in for this one)."""
    return f"sqlite:///{tmp_path_factory.mktemp('cli') / 'verdicts.db'}"


@pytest.fixture(scope="module")
def records(store_url: str) -> Iterator[list[VerdictRecord]]:
    """40 verdicts, one every 10 minutes, the newest a minute ago."""
    start = time.time() - 60 - (COUNT - 1) * SPACING_S
    stored = list(synthetic_records(DEFAULT, COUNT, seed=5, start=start, spacing_s=SPACING_S))
    store = VerdictStore.open(StoreSettings(url=store_url))
    store.commit_many(stored)
    store.close()
    yield stored


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modgate.tools.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
        check=False,
    )


def newest_first(records: list[VerdictRecord]) -> list[str]:
    return [r.verdict_id for r in sorted(records, key=lambda r: r.decided_at, reverse=True)]


def test_list_prints_the_newest_verdicts_as_a_table(store_url: str, records: list[VerdictRecord]) -> None:
    done = cli("verdicts", "list", "--limit", "5", env={"MODGATE_STORE_URL": store_url})  # the default store
    assert done.returncode == 0, done.stderr
    header, *rows = done.stdout.splitlines()
    assert header.split()[:4] == ["decided", "(UTC)", "verdict", "id"] and "trace id" in header
    newest = records[-1]
    assert [row.split()[2] for row in rows] == newest_first(records)[:5]
    assert (
        rows[0].split()[:2]
        == datetime.fromtimestamp(newest.decided_at, UTC).strftime("%Y-%m-%d %H:%M:%SZ").split()
    )
    assert f"{DEFAULT.name}@{DEFAULT.version}" in rows[0] and f"synthetic/{newest.request_id}" in rows[0]
    assert newest.trace_id in rows[0]


def test_list_filters_and_prints_json(store_url: str, records: list[VerdictRecord]) -> None:
    recent = [r for r in records if r.decided_at >= time.time() - 2 * 3600 - 30 and r.decision == "ALLOW"]
    done = cli("verdicts", "list", "--decision", "allow", "--since", "2h", "--json", "--store-url", store_url)
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert [r["verdict_id"] for r in rows] == newest_first(recent) and rows
    assert set(rows[0]) == {
        "verdict_id", "caller", "request_id", "content_id", "decided_at", "decided_at_utc", "decision",
        "risk", "degraded", "policy_name", "policy_version", "trace_id",
    }  # fmt: skip
    one = records[3]
    by_content = json.loads(
        cli("verdicts", "list", "--content-id", one.content_id, "--json", "--store-url", store_url).stdout
    )
    assert [r["verdict_id"] for r in by_content] == [one.verdict_id]


def test_show_prints_the_whole_verdict(store_url: str, records: list[VerdictRecord]) -> None:
    record = next(r for r in records if r.decision != "ALLOW" and r.fusion["kind"] == "fused")
    done = cli("verdicts", "show", record.verdict_id, "--store-url", store_url)
    assert done.returncode == 0, done.stderr
    text = done.stdout
    assert text.startswith(f"Verdict {record.verdict_id}  decided ")
    assert f"Policy {DEFAULT.name}@{DEFAULT.version}  digest {DEFAULT.digest}" in text
    for section in (
        "Models: ",
        "Fusion kept: ",
        "\nCategories\n",
        "\nEvidence\n",
        "\nModalities\n",
        "\nReasons\n",
    ):
        assert section in text
    assert f"Trace: {record.trace_id}" in text and record.decision in text.split("\n\n")[1]

    data = json.loads(cli("verdicts", "show", record.verdict_id, "--json", "--store-url", store_url).stdout)
    assert data["verdict_id"] == record.verdict_id and data["decision"] == record.decision
    assert data["policy"]["digest"] == DEFAULT.digest and data["policy"]["document"]["name"] == DEFAULT.name
    assert data["fusion"] == json.loads(json.dumps(record.fusion)) and data["models"] == record.models
    assert data["verdict"]["verdict_id"] == record.verdict_id
    assert data["verdict"]["decision"] == f"DECISION_{record.decision}"
    assert len(data["verdict"]["categories"]) == len(DEFAULT.categories)


def test_an_unknown_id_and_an_unusable_store_say_so(
    store_url: str, records: list[VerdictRecord], tmp_path: Path
) -> None:
    unknown = cli("verdicts", "show", "f" * 32, "--store-url", store_url)
    assert unknown.returncode == 1 and f"no verdict {'f' * 32!r} in the store" in unknown.stderr

    missing = cli("verdicts", "list", "--store-url", f"sqlite:///{tmp_path / 'none.db'}")
    assert missing.returncode == 2 and f"no verdict store at {tmp_path / 'none.db'}" in missing.stderr
    assert not (tmp_path / "none.db").exists()

    down = cli("verdicts", "list", "--store-url", "postgresql://moderator:s3cret-pw@127.0.0.1:1/verdicts")
    assert down.returncode == 2, down.stderr
    assert "postgresql://moderator:***@127.0.0.1:1/verdicts" in down.stderr and "s3cret-pw" not in down.stderr
    assert "Check that the database is running" in down.stderr and "Traceback" not in down.stderr


def test_prune_deletes_what_is_older(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'prune.db'}"
    store = VerdictStore.open(StoreSettings(url=url))
    store.commit_many(
        list(synthetic_records(DEFAULT, 10, seed=1, start=time.time() - 10 * 86400, spacing_s=86400))
    )
    done = cli("verdicts", "prune", "--older-than-days", "4.5", "--store-url", url)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("pruned 6 verdict(s) decided before ")
    assert store.count() == 4  # 1 to 4 days old
    store.close()


def test_replay_prints_the_matrix_and_writes_json(
    store_url: str, records: list[VerdictRecord], tmp_path: Path
) -> None:
    document = DEFAULT.model_dump(mode="json")
    document["version"] = "candidate"
    document["categories"]["violence"]["thresholds"]["review"] = 0.3
    document["neutral"]["text_exemplars"].append("Nice weather today.")
    policy_file = tmp_path / "candidate.yaml"
    policy_file.write_text(yaml.safe_dump(document))
    out = tmp_path / "replay.json"
    done = cli(
        "replay", "--policy", str(policy_file), "--json-out", str(out), "--top", "3", "--store-url", store_url
    )
    assert done.returncode == 0, done.stderr
    assert f"Replayed {COUNT} stored verdict(s) (all) under default@candidate" in done.stdout
    for line in ("Decision changes, stored -> replayed", "Re-fused under the new values", "Needs a rescan: "):
        assert line in done.stdout
    assert "categories.violence.thresholds.review: 0.5 -> 0.3" in done.stdout
    report = json.loads(out.read_text())
    assert set(report) >= {
        "policy",
        "scanned",
        "matrix",
        "changed",
        "needs_rescan",
        "not_refused",
        "top_changes",
    }
    assert report["policy_file"] == str(policy_file) and report["scanned"] == COUNT
    assert [f["path"] for f in report["needs_rescan"]["fields"]] == ["neutral.text_exemplars"]
    unfused = sum(r.fusion["kind"] == "unfused" for r in records)
    refused = sum(
        sum(row.values()) for m in (report["matrix"], report["needs_rescan"]["matrix"]) for row in m.values()
    )
    assert refused == COUNT - unfused and report["not_refused"].get("unfused", 0) == unfused
    assert set(report["matrix"]) <= {"ALLOW", "REVIEW", "BLOCK"}
    assert all(set(row) == {"ALLOW", "REVIEW", "BLOCK", "ERROR"} for row in report["matrix"].values())

    bad = cli("replay", "--policy", str(tmp_path / "nope.yaml"), "--store-url", store_url)
    assert bad.returncode == 2 and "does not exist" in bad.stderr


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-12-01", datetime(2026, 12, 1, tzinfo=UTC).timestamp()),
        ("2026-12-01T10:00Z", datetime(2026, 12, 1, 10, tzinfo=UTC).timestamp()),
        ("2026-12-01T10:00:00+02:00", datetime(2026, 12, 1, 8, tzinfo=UTC).timestamp()),
        ("30m", 1_000_000.0 - 1800),
        ("2h", 1_000_000.0 - 7200),
        ("3d", 1_000_000.0 - 3 * 86400),
        ("1.5w", 1_000_000.0 - 1.5 * 7 * 86400),
    ],
)
def test_since_takes_iso_times_and_durations(value: str, expected: float) -> None:
    assert parse_since(value, now=1_000_000.0) == expected


def test_a_bad_since_is_a_usage_error_naming_the_forms() -> None:
    with pytest.raises(ValueError, match=r"neither an ISO-8601 time .* nor a duration \(30m, 2h, 3d, 1w\)"):
        parse_since("yesterday")
    done = cli("verdicts", "list", "--since", "yesterday")
    assert done.returncode == 2 and "neither an ISO-8601 time" in done.stderr


def test_a_shown_url_hides_its_password() -> None:
    assert shown_url("postgresql://u:p%40ss@db:5432/v") == "postgresql://u:***@db:5432/v"
    assert shown_url("sqlite:////var/lib/verdicts.db") == "sqlite:////var/lib/verdicts.db"
