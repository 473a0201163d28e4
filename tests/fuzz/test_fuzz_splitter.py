"""The splitter under atheris: a short fixed-seed fuzzing run from the mediagen seed corpus, and
a replay of every input that ever crashed it (tests/fuzz/regressions/).

Long runs (see README, "Fuzzing"): .venv/bin/python -m tests.fuzz.fuzz_splitter
-max_total_time=3600 -timeout=20 -rss_limit_mb=4096 -artifact_prefix=fuzz-findings/ fuzz-corpus/
Each finding is saved under tests/fuzz/regressions/ once fixed.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fuzz.seeds import write_seeds
from tests.gateway.gateway_process import REPO

REGRESSIONS = Path(__file__).parent / "regressions"
FUZZ_SECONDS = 25


def run_harness(*args: str, timeout_s: float) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OTEL_SDK_DISABLED": "true"}
    return subprocess.run(
        [sys.executable, "-m", "tests.fuzz.fuzz_splitter", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )


def findings(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if re.match(r"(crash|timeout|oom|leak|slow-unit)-", p.name))


@pytest.mark.timeout(FUZZ_SECONDS + 90)
def test_short_fuzzing_run_finds_nothing(tmp_path: Path) -> None:
    corpus, artifacts = tmp_path / "corpus", tmp_path / "findings"
    artifacts.mkdir()
    seeds = write_seeds(corpus)
    result = run_harness(
        "-seed=1",
        f"-max_total_time={FUZZ_SECONDS}",
        "-timeout=10",
        "-rss_limit_mb=2048",
        "-print_final_stats=1",
        f"-artifact_prefix={artifacts}/",
        str(corpus),
        timeout_s=FUZZ_SECONDS + 60,
    )
    log = result.stdout + result.stderr
    found = findings(artifacts)
    assert result.returncode == 0 and not found, f"fuzzing found {[p.name for p in found]}:\n{log[-4000:]}"
    executed = int(re.search(r"stat::number_of_executed_units:\s*(\d+)", log).group(1))  # type: ignore[union-attr]
    print(f"\nsplitter fuzzing: {executed} inputs in {FUZZ_SECONDS} s from {len(seeds)} seeds, 0 findings")
    assert executed > 100  # it really fuzzed, not just loaded the seeds


def test_every_past_finding_is_replayed_without_a_crash(tmp_path: Path) -> None:
    """libFuzzer given files runs each once: the past findings, and the seeds (valid media
    must split too)."""
    findings_ = sorted(p for p in REGRESSIONS.iterdir() if p.is_file() and p.name != "README.md")
    assert findings_, "tests/fuzz/regressions/ holds the inputs that once crashed the splitter"
    inputs = findings_ + write_seeds(tmp_path / "seeds")
    result = run_harness("-timeout=10", "-rss_limit_mb=2048", *map(str, inputs), timeout_s=120)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-4000:]
    for path in inputs:
        assert f"Running: {path}" in log and f"Executed {path}" in log, log[-4000:]
