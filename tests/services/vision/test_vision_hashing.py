"""The vision service hashes a request's frames (PDQ) and returns their bank matches in /score.

A real `bentoml serve` running uncalibrated (random weights of the tiny architecture: no CLIP
weights needed) with a bank directory the test fills through modgate.banks.store.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from modgate.banks.entries import BankEntry
from modgate.banks.pdq import pdq_frame
from modgate.banks.signals import SignalType
from modgate.banks.store import BankStore
from modgate.wire import HashResult
from tests.modgate.banks.clips import clip_frames
from tests.modgate.banks.policies import policy_yaml_with_banks
from tests.services.vision.conftest import (
    BASE_POLICY,
    READY_TIMEOUT_S,
    REPO,
    VisionProcess,
    service_env,
    spawn_vision,
    stop_process_tree,
    wait_ready,
)
from tests.services.vision.tinyclip import ARCH_NAME, TINY_CFG
from tests.services.vision.vision_http import metric_value, score

BANK_POLICY = policy_yaml_with_banks(
    {"known": {"category": "violence", "pdq_max_distance": 31}, "other": {"category": "hate"}}, name="banked"
)


def jpeg(rgb: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


def frames_of(seed: int, count: int) -> list[np.ndarray]:
    """`count` frames a second apart, at the gateway's frame size (336 px wide)."""
    frames = list(clip_frames(seed, duration_s=float(count), width=336, height=189, fps=1))
    return [np.ascontiguousarray(f) for f in frames]


def pdq_entries(frames: list[np.ndarray], content_id: str) -> list[BankEntry]:
    return [
        BankEntry(
            "",
            SignalType.PDQ,
            pdq_frame(f)[0].hex(),
            category="violence",
            content_id=content_id,
            content_ms=1000 * i,
        )
        for i, f in enumerate(frames)
    ]


@dataclass
class BankedService:
    service: VisionProcess
    store: BankStore
    banked: list[np.ndarray]
    unrelated: list[np.ndarray]


@pytest.fixture(scope="module")
def banked_service(
    tmp_path_factory: pytest.TempPathFactory, free_port: Callable[[], int]
) -> Iterator[BankedService]:
    tmp = tmp_path_factory.mktemp("vision-banks")
    arch = tmp / f"{ARCH_NAME}.json"  # the tiny architecture, random weights: no training needed
    arch.write_text(json.dumps(TINY_CFG), encoding="utf-8")
    store = BankStore(tmp / "banks")
    banked, unrelated = frames_of(1, 5), frames_of(300, 2)
    store.add_entries("known", pdq_entries(banked, "takedown-7"))
    store.create("other")
    policies = tmp / "policies"
    policies.mkdir()
    (policies / "base.yaml").write_text(BASE_POLICY)
    (policies / "banked.yaml").write_text(BANK_POLICY)
    env = service_env(
        tmp,
        MODGATE_POLICY_DIR=str(policies),
        MODGATE_BANK_DIR=str(store.root),
        MODGATE_BANK_RELOAD_INTERVAL_S="0.2",
        MODGATE_VISION_ALLOW_UNCALIBRATED="true",
        MODGATE_VISION_ARCH=str(arch),
    )
    port = free_port()
    process = spawn_vision(env, port, tmp / "serve.log")
    service = VisionProcess(process, f"http://127.0.0.1:{port}", tmp / "serve.log", policies, env)
    try:
        wait_ready(service)
        yield BankedService(service, store, banked, unrelated)
    finally:
        stop_process_tree(process)


def test_score_returns_pdq_matches_with_times_distances_and_entries(banked_service: BankedService) -> None:
    grey = np.full((189, 336, 3), 120, dtype=np.uint8)
    frames = [*banked_service.banked[:3], grey, *banked_service.unrelated]
    times = [0, 1000, 2000, 3000, 4000, 5000]
    result = score(banked_service.service.url, [jpeg(f) for f in frames], times, policy="banked")
    assert result.model.calibrated is False  # hashing needs no model
    hashes = result.hashes
    assert hashes is not None
    assert [(b.name, b.generation, b.entries) for b in hashes.banks] == [("known", 1, 5), ("other", 1, 0)]
    assert [f.timestamp_ms for f in hashes.frames] == times and all(len(f.pdq) == 64 for f in hashes.frames)
    assert hashes.frames[3].quality < 50 and all(
        f.quality >= 50 for i, f in enumerate(hashes.frames) if i != 3
    )

    entries = {e.content_ms: e.entry_id for e in banked_service.store.iter_entries("known")}
    closest = {}
    for match in hashes.matches:
        assert (match.bank, match.category, match.content_id) == ("known", "violence", "takedown-7")
        assert match.distance <= 31 and match.quality >= 50
        closest.setdefault(match.frame_index, match)
    assert sorted(closest) == [0, 1, 2]  # the grey frame and the unrelated ones match nothing
    for index, match in closest.items():
        assert match.timestamp_ms == times[index] and match.content_ms == 1000 * index
        assert match.entry_id == entries[1000 * index]
        assert match.distance <= 8  # the JPEG round trip moves a few bits only
    assert set(hashes.timings_ms) == {"hash_ms", "lookup_ms"}


def test_a_policy_without_banks_gets_no_hashes(banked_service: BankedService) -> None:
    result = score(banked_service.service.url, [jpeg(banked_service.banked[0])], [0], policy="base")
    assert result.hashes is None


def test_the_service_picks_up_a_bank_change_while_running(banked_service: BankedService) -> None:
    url, target = banked_service.service.url, banked_service.unrelated[0]
    assert score(url, [jpeg(target)], [0], policy="banked").hashes.matches == []  # type: ignore[union-attr]
    banked_service.store.add_entries("other", pdq_entries([target], "later"))
    deadline = time.monotonic() + 30
    hashes: HashResult | None = None
    while time.monotonic() < deadline:
        hashes = score(url, [jpeg(target)], [0], policy="banked").hashes
        if hashes is not None and hashes.matches:
            break
        time.sleep(0.3)
    assert hashes is not None and [(m.bank, m.content_id) for m in hashes.matches] == [("other", "later")]
    assert ("other", 2, 1) in [(b.name, b.generation, b.entries) for b in hashes.banks]

    metrics = httpx.get(f"{url}/metrics", timeout=30).text
    assert metric_value(metrics, 'modgate_bank_matches_total{bank="known"}') >= 3
    assert metric_value(metrics, 'modgate_bank_matches_total{bank="other"}') >= 1
    assert metric_value(metrics, "modgate_bank_lookup_seconds_count") >= 3
    assert metric_value(metrics, 'modgate_bank_entries{bank="other"}') == 1
    assert metric_value(metrics, 'modgate_vision_hashed_frames_total{quality="low"}') >= 1


def test_the_service_refuses_to_start_when_a_policy_names_a_missing_bank(
    tmp_path: Path, free_port: Callable[[], int]
) -> None:
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "banked.yaml").write_text(policy_yaml_with_banks({"gifct-terror": {"category": "violence"}}))
    env = service_env(
        tmp_path,
        MODGATE_POLICY_DIR=str(policies),
        MODGATE_BANK_DIR=str(tmp_path / "banks"),
        MODGATE_VISION_ALLOW_UNCALIBRATED="true",
    )
    process = spawn_vision(env, free_port(), tmp_path / "serve.log")
    try:
        code = process.wait(timeout=READY_TIMEOUT_S)
    finally:
        stop_process_tree(process)
    log = (tmp_path / "serve.log").read_text(errors="replace")
    assert code != 0
    assert "modgate vision: policy 'banked' (version 1) names bank(s) gifct-terror" in log
    assert f"the bank directory {tmp_path / 'banks'} does not hold (it holds: no banks)" in log


SPAN_PROBE = r"""
import asyncio, json, sys
from pathlib import Path
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)

from modgate.banks.config import BankSettings
from modgate.policy import load_policies
from services.vision.hashing import FrameHasher

bank_dir, policy_dir, frame = map(Path, sys.argv[1:4])
hasher = FrameHasher(BankSettings(dir=bank_dir))
policy = load_policies(policy_dir)["banked"]
result = asyncio.run(hasher.hash_frames([frame, frame], [0, 500], "jpeg", None, policy))
print(json.dumps({
    "matches": len(result.matches),
    "spans": [{"name": s.name, "attributes": dict(s.attributes)} for s in exporter.get_finished_spans()],
}))
"""


def test_hashing_and_lookup_are_traced(tmp_path: Path) -> None:
    frames = frames_of(1, 1)
    store = BankStore(tmp_path / "banks")
    store.add_entries("known", pdq_entries(frames, "c"))
    store.create("other")
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "banked.yaml").write_text(BANK_POLICY)
    (tmp_path / "frame.jpg").write_bytes(jpeg(frames[0]))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    args = [str(store.root), str(tmp_path / "policies"), str(tmp_path / "frame.jpg")]
    done = subprocess.run(
        [sys.executable, "-c", SPAN_PROBE, *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["matches"] == 2
    spans = {s["name"]: s["attributes"] for s in report["spans"]}
    assert spans["vision.hash"]["modgate.frame_count"] == 2
    assert spans["vision.bank_lookup"]["modgate.bank.names"] == "known,other"
    assert spans["vision.bank_lookup"]["modgate.bank.matches"] == 2
    assert spans["vision.bank_lookup"]["modgate.policy"] == "banked@1"
