"""Known content, end to end: a clip banked with `modgate bank add`, then its re-uploads moderated
by a real gateway and a real vision service (uncalibrated: no CLIP weights here) sharing one bank
directory and one policy that names the bank.

The same file is an exact MD5/SHA-256 hit: the verdict comes back before any split or model call
(every modality SKIPPED with the match as the reason; speech and text point at a port nobody
listens on, and vision's request counter does not move). Edited copies (a much lower bitrate,
640x360, brightness +10%, the first 3 s trimmed, embedded in the middle of a longer unrelated
clip) are BLOCKed on PDQ frame matches, with `hash` evidence at the times the clip shows.
Unrelated clips match nothing (5 here; 20 under the slow marker).

One stack for the module: a vision process with the bank policy and a gateway over it. The clips
have no audio and no text, so speech and text are never needed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml

from modgate.policy import DEFAULT_POLICY_DIR
from modgate.tools.mediagen.scenes import REUPLOAD_EDITS, make_clip, reupload
from modgate.tools.stack import free_port, service_spec
from modgate.v1 import moderation_pb2 as pb
from tests.e2e.conftest import QUIET_ENV, Gateway, Processes, metric_value

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

REPO = Path(__file__).resolve().parents[2]
CLIP_S = 20.0
UNRELATED_FAST = range(200, 205)
UNRELATED_SLOW = range(200, 220)
FRAME_STEP_MS = 1000  # the gateway's 1 fps for clips up to 32 s


@dataclass(frozen=True)
class BankedStack:
    gateway: Gateway
    vision_url: str
    work: Path
    original: Path
    entries: int


def _bank_policy(directory: Path) -> None:
    """The shipped default policy with a bank: BLOCK violence on a match."""
    data = yaml.safe_load((DEFAULT_POLICY_DIR / "default.yaml").read_text(encoding="utf-8"))
    data["banks"] = {"known": {"category": "violence", "action": "BLOCK"}}
    directory.mkdir()
    (directory / "default.yaml").write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


def _bank_add(bank_dir: Path, clip: Path) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODGATE_BANK")}
    env.update(PYTHONPATH=str(REPO), MODGATE_BANK_DIR=str(bank_dir))
    command = [sys.executable, "-m", "modgate.tools.cli", "bank", "add", "known", str(clip)]
    proc = subprocess.run(
        [*command, "--category", "violence", "--note", "e2e takedown"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.fixture(scope="module")
def banked(
    processes: Processes, start_gateway: Callable[..., Gateway], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BankedStack]:
    work = tmp_path_factory.mktemp("e2e-banks")
    original = make_clip(work / "original.mp4", seed=1, duration_s=CLIP_S)
    bank_dir = work / "banks"
    added = _bank_add(bank_dir, original)
    assert "bank known: added 22 entries" in added, added  # 20 frames' PDQ + MD5 + SHA-256
    _bank_policy(work / "policies")
    shared = {
        "MODGATE_POLICY_DIR": str(work / "policies"),
        "MODGATE_BANK_DIR": str(bank_dir),
        "MODGATE_BANK_RELOAD_INTERVAL_S": "0.5",
    }
    port = free_port()
    vision_env = {**QUIET_ENV, "MODGATE_VISION_ALLOW_UNCALIBRATED": "true", **shared}
    vision = processes.start(service_spec("vision", port, env=vision_env, name="vision-banked"))
    processes.wait_ready(vision)
    vision_url = f"http://127.0.0.1:{port}"
    nobody = f"http://127.0.0.1:{free_port()}"  # speech and text: a call would fail its modality
    upstreams = (
        f'speech:\n  stable: {{url: "{nobody}"}}\nvision:\n  stable: {{url: "{vision_url}"}}\n'
        f'text:\n  stable: {{url: "{nobody}"}}\n'
    )
    gateway = start_gateway("gateway-banked", upstreams, **shared)
    try:
        yield BankedStack(gateway, vision_url, work, original, 22)
    finally:
        processes.stop("gateway-banked")
        processes.stop("vision-banked")


def vision_requests(stack: BankedStack) -> float:
    text = httpx.get(f"{stack.vision_url}/metrics", timeout=10, trust_env=False).text
    return metric_value(text, "bentoml_service_request_total", endpoint="/score")


def moderate(stack: BankedStack, path: Path, *, streamed: bool = False) -> pb.Verdict:
    limit = 0 if streamed else 32 * 1024 * 1024
    with stack.gateway.client(timeout_s=120, unary_limit_bytes=limit) as client:
        return client.moderate_file(path)


def hash_evidence(verdict: pb.Verdict) -> list[pb.Evidence]:
    return [e for e in verdict.evidence if e.signal == "hash"]


@pytest.mark.parametrize("streamed", [False, True], ids=["unary", "streamed"])
def test_the_same_file_short_circuits_before_any_split_or_model(banked: BankedStack, streamed: bool) -> None:
    before = vision_requests(banked)
    verdict = moderate(banked, banked.original, streamed=streamed)
    assert verdict.decision == pb.DECISION_BLOCK and not verdict.degraded
    assert [m.state for m in verdict.modalities] == [pb.MODALITY_STATE_SKIPPED] * 3
    assert all(m.reason.startswith("short-circuit: ") for m in verdict.modalities), verdict.modalities
    assert any("skipped: split, speech, vision, text" in r for r in verdict.reasons), verdict.reasons
    assert verdict.media.frames_sampled == 0 and verdict.media.duration_ms == 0  # never decoded
    assert {t.stage for t in verdict.timings} >= {"bank_lookup"}
    assert "split" not in {t.stage for t in verdict.timings}
    (evidence,) = hash_evidence(verdict)
    assert (evidence.modality, evidence.source, evidence.category) == (
        pb.MODALITY_VISUAL,
        pb.SOURCE_FRAME,
        "violence",
    )
    assert evidence.bank_match.bank == "known" and evidence.bank_match.signal_type in ("md5", "sha256")
    assert evidence.bank_match.entry_id
    assert vision_requests(banked) == before  # no model call
    metrics = banked.gateway.metrics()
    assert metric_value(metrics, "modgate_gateway_bank_short_circuits_total", bank="known") >= 1


def edited(stack: BankedStack, name: str) -> tuple[Path, int]:
    """The edited file and where the clip starts in it (ms; negative: its start was cut)."""
    path, start_ms = reupload(stack.original, stack.work, name)
    if name == "lower bitrate":
        assert path.stat().st_size * 4 < stack.original.stat().st_size
    return path, start_ms


@pytest.mark.parametrize("name", REUPLOAD_EDITS)
def test_an_edited_reupload_is_blocked_with_hash_evidence_at_the_right_times(
    banked: BankedStack, name: str
) -> None:
    path, start_ms = edited(banked, name)
    verdict = moderate(banked, path)
    visual = next(m for m in verdict.modalities if m.modality == pb.MODALITY_VISUAL)
    assert visual.state == pb.MODALITY_STATE_UNCALIBRATED  # the zero-shot signal decides nothing here
    assert verdict.decision == pb.DECISION_BLOCK, (name, list(verdict.reasons))
    assert any(r.startswith("known content: bank known (violence) matched") for r in verdict.reasons)
    found = hash_evidence(verdict)
    assert found, name
    media = verdict.media
    step_ms = media.duration_ms / media.frames_sampled  # the gateway's sampling interval for this file
    clip_start, clip_end = max(start_ms, 0), min(start_ms + int(CLIP_S * 1000), media.duration_ms)
    for evidence in found:
        assert (evidence.modality, evidence.source, evidence.category) == (
            pb.MODALITY_VISUAL,
            pb.SOURCE_FRAME,
            "violence",
        )
        match = evidence.bank_match
        assert (match.bank, match.signal_type, match.action) == ("known", "pdq", "BLOCK")
        assert 0 <= match.distance <= 31 and match.entry_id
        # The frame shows the clip at (its time - start): the banked frame nearest that moment.
        assert clip_start - step_ms <= evidence.start_ms <= clip_end + step_ms, (name, evidence)
        assert match.content_id == "original.mp4"
        assert abs((evidence.start_ms - start_ms) - match.content_ms) <= max(step_ms, FRAME_STEP_MS), (
            name,
            evidence,
        )
        assert evidence.end_ms > evidence.start_ms
    # Most of the frames that show the clip matched.
    assert len(found) >= 0.8 * (clip_end - clip_start) / step_ms, (name, len(found), step_ms)


def _unrelated(banked: BankedStack, seeds: range) -> None:
    for seed in seeds:
        path = banked.work / f"unrelated-{seed}.mp4"
        make_clip(path, seed=seed, duration_s=10.0, width=640, height=360)
        verdict = moderate(banked, path)
        assert verdict.decision == pb.DECISION_ALLOW, (seed, list(verdict.reasons))
        assert not hash_evidence(verdict), seed
        assert not [r for r in verdict.reasons if "bank known" in r], (seed, list(verdict.reasons))
        assert verdict.media.frames_sampled == 10  # the frames were looked at


def test_unrelated_clips_match_nothing(banked: BankedStack) -> None:
    _unrelated(banked, UNRELATED_FAST)


@pytest.mark.slow
def test_twenty_unrelated_clips_match_nothing(banked: BankedStack) -> None:
    _unrelated(banked, UNRELATED_SLOW)
