"""The exact-hash stage: digests while the bytes arrive, the lookup before splitting, the
short-circuit verdict (no split, no model call), the bank check at start, hot reload."""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gateway.app import build_gateway
from gateway.config import GatewayConfig, GatewayMode
from gateway.context import RequestContext
from gateway.job import ModerationJob, ModerationRequest
from gateway.media.fetch import FetchPolicy
from gateway.media.intake import MediaIntake, MediaSource
from gateway.orchestrator.exact import ExactStage
from modgate.banks.checks import UnknownBankError
from modgate.banks.config import BankSettings
from modgate.banks.digests import ContentDigests
from modgate.banks.entries import BankEntry
from modgate.banks.signals import SignalType
from modgate.banks.store import BankStore
from modgate.policy import Policy, Requests
from modgate.v1 import moderation_pb2 as pb
from tests.gateway.test_media_intake import chunks, data
from tests.gateway.test_orchestrator import media, orchestrator
from tests.modgate.banks.policies import policy_with_banks, policy_yaml_with_banks

pytestmark = pytest.mark.timeout(60)

REPO = Path(__file__).resolve().parents[2]
UPLOAD = os.urandom(3 * 1024 * 1024 + 17)  # over the spool's write size: several updates
BANKED = policy_with_banks({"known": {"category": "violence"}})
REVIEWED = policy_with_banks({"known": {"category": "violence", "action": "REVIEW"}})
NO_SHORT_CIRCUIT = policy_with_banks(
    {"known": {"category": "violence", "exact_short_circuit": False}},
    requests=Requests(allow_skip_all_modalities=True),
)
# Nothing listens there: a call to a model service would fail its modality, not pass unseen.
DEAD = {s: "http://127.0.0.1:9" for s in ("speech", "vision", "text")}


def bank(tmp_path: Path, data: bytes = UPLOAD, signal: SignalType = SignalType.SHA256) -> Path:
    root = tmp_path / "banks"
    digest = ContentDigests.of_bytes(data)
    value = digest.sha256 if signal == SignalType.SHA256 else digest.md5
    entry = BankEntry("", signal, value, category="violence", content_id="removed.mp4")
    BankStore(root).add_entries("known", [entry])
    return root


def context(policy: Policy) -> RequestContext:
    return RequestContext(request_id="sc-1", deadline=time.monotonic() + 5, policy=policy)


def job(policy: Policy, payload: bytes = UPLOAD) -> ModerationJob:
    source = MediaSource(payload, max_bytes=len(payload), digests=ContentDigests.of_bytes(payload))
    return ModerationJob(ModerationRequest(content_id="c-1"), source, context(policy))


class CountingSplit:
    def __init__(self) -> None:
        self.calls = 0

    async def split(self, job: ModerationJob, *, on_audio: object = None) -> object:
        self.calls += 1
        return media(frames=0)


def test_digests_are_computed_while_the_bytes_arrive_only_for_a_policy_with_banks(tmp_path: Path) -> None:
    expected = (hashlib.md5(UPLOAD).hexdigest(), hashlib.sha256(UPLOAD).hexdigest())
    source_file = tmp_path / "media" / "clip.mp4"
    source_file.parent.mkdir()
    source_file.write_bytes(UPLOAD)
    (tmp_path / "spool").mkdir()
    config = GatewayConfig(
        max_unary_bytes=len(UPLOAD) + 1,
        max_stream_bytes=8 * 1024 * 1024,
        media_root=tmp_path / "media",
        spool_dir=tmp_path / "spool",
    )
    gate = MediaIntake(config, FetchPolicy.from_config(config))

    async def main(policy: Policy) -> list[MediaSource | None]:
        opened = []
        async with gate.unary(UPLOAD, "", context(policy)) as inline:
            opened.append(inline)
        messages = [data(UPLOAD[i : i + 100_000]) for i in range(0, len(UPLOAD), 100_000)]
        async with gate.streamed(chunks(*messages), context(policy)) as streamed:
            assert streamed is not None and isinstance(streamed.data, Path)
            assert await asyncio.to_thread(streamed.data.read_bytes) == UPLOAD
            opened.append(streamed)
        async with gate.unary(b"", source_file.as_uri(), context(policy)) as uri:
            opened.append(uri)
        return opened

    for source in asyncio.run(main(BANKED)):
        assert source is not None and source.digests is not None
        assert (source.digests.md5, source.digests.sha256, source.digests.size) == (*expected, len(UPLOAD))
    default = policy_with_banks({})
    assert all(s is not None and s.digests is None for s in asyncio.run(main(default)))


@pytest.mark.parametrize("signal", [SignalType.SHA256, SignalType.MD5])
def test_an_exact_hit_returns_the_verdict_before_splitting_or_any_model(
    tmp_path: Path, signal: SignalType
) -> None:
    stage = ExactStage.from_settings(BankSettings(dir=bank(tmp_path, signal=signal)))
    split = CountingSplit()
    orch = orchestrator(DEAD)
    orch.splitter, orch.exact = split, stage  # type: ignore[assignment]

    async def main() -> pb.Verdict:
        try:
            return await orch.run(job(BANKED))
        finally:
            await orch.aclose()

    started = time.perf_counter()
    verdict = asyncio.run(main())
    elapsed = time.perf_counter() - started
    assert split.calls == 0 and elapsed < 1.0
    assert verdict.decision == pb.DECISION_BLOCK and not verdict.degraded
    assert [(m.state, m.reason.split(";")[0]) for m in verdict.modalities] == [
        (
            pb.MODALITY_STATE_SKIPPED,
            f"short-circuit: {signal.value} of the upload is in bank known (entry "
            + verdict.evidence[0].bank_match.entry_id
            + ")",
        )
    ] * 3
    (evidence,) = verdict.evidence
    assert (evidence.modality, evidence.source, evidence.signal, evidence.frame_index) == (
        pb.MODALITY_VISUAL,
        pb.SOURCE_FRAME,
        "hash",
        -1,
    )
    assert (evidence.bank_match.bank, evidence.bank_match.signal_type, evidence.bank_match.action) == (
        "known",
        signal.value,
        "BLOCK",
    )
    assert evidence.bank_match.entry_id and evidence.category == "violence"
    assert any("skipped: split, speech, vision, text" in r for r in verdict.reasons), verdict.reasons
    violence = next(c for c in verdict.categories if c.category == "violence")
    assert violence.decision == pb.DECISION_BLOCK
    assert violence.score == pytest.approx(BANKED.categories["violence"].thresholds.block)
    assert "bank_lookup" in {t.stage for t in verdict.timings}
    assert verdict.media.frames_sampled == 0 and verdict.content_id == "c-1"


def test_the_banks_action_is_the_decision_and_other_bytes_miss(tmp_path: Path) -> None:
    stage = ExactStage.from_settings(BankSettings(dir=bank(tmp_path)))
    assert stage.lookup(job(BANKED, UPLOAD + b"x")) == []  # one byte more: another file
    (finding,) = stage.lookup(job(REVIEWED))
    assert (finding.bank, finding.short_circuit, finding.action.value) == ("known", True, "REVIEW")
    orch = orchestrator(DEAD)
    orch.exact = stage

    async def main() -> pb.Verdict:
        try:
            return await orch.run(job(REVIEWED))
        finally:
            await orch.aclose()

    assert asyncio.run(main()).decision == pb.DECISION_REVIEW


def test_without_short_circuit_the_hit_is_evidence_after_the_models(tmp_path: Path) -> None:
    split = CountingSplit()
    orch = orchestrator(DEAD)
    orch.splitter, orch.exact = split, ExactStage.from_settings(BankSettings(dir=bank(tmp_path)))  # type: ignore[assignment]

    async def main() -> pb.Verdict:
        try:
            return await orch.run(job(NO_SHORT_CIRCUIT))
        finally:
            await orch.aclose()

    verdict = asyncio.run(main())
    assert split.calls == 1  # split as usual
    assert verdict.decision == pb.DECISION_BLOCK
    assert [e.signal for e in verdict.evidence] == ["hash"]
    assert any("does not short-circuit" in r for r in verdict.reasons), verdict.reasons
    assert not any("short-circuit:" in m.reason for m in verdict.modalities)


def test_a_bank_added_while_serving_is_matched_without_a_restart(tmp_path: Path) -> None:
    root = tmp_path / "banks"
    BankStore(root).create("known")
    stage = ExactStage.from_settings(BankSettings(dir=root, reload_interval_s=0.05))
    assert stage.lookup(job(BANKED)) == []
    digest = ContentDigests.of_bytes(UPLOAD)
    BankStore(root).add_entries("known", [BankEntry("", SignalType.MD5, digest.md5, category="violence")])
    deadline = time.monotonic() + 10
    while not stage.lookup(job(BANKED)):
        assert time.monotonic() < deadline, "the new entry was never picked up"
        time.sleep(0.05)


def test_an_unknown_bank_in_a_policy_fails_the_start(tmp_path: Path) -> None:
    config = GatewayConfig(
        mode=GatewayMode.SPLIT_ONLY, listen="127.0.0.1:0", banks=BankSettings(dir=tmp_path / "banks")
    )
    policy = policy_with_banks({"gifct": {"category": "violence"}})
    with pytest.raises(UnknownBankError, match="names bank\\(s\\) gifct"):
        build_gateway(config, policies={"default": policy})


def test_the_gateway_process_exits_naming_the_missing_bank(tmp_path: Path) -> None:
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "banked.yaml").write_text(policy_yaml_with_banks({"gifct": {"category": "violence"}}))
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "OTEL_SDK_DISABLED": "true",
        "MODGATE_POLICY_DIR": str(policies),
        "MODGATE_GATEWAY_DEFAULT_POLICY": "banked",
        "MODGATE_GATEWAY_MODE": "split_only",
        "MODGATE_GATEWAY_LISTEN": "127.0.0.1:0",
        "MODGATE_BANK_DIR": str(tmp_path / "banks"),
    }
    proc = subprocess.run(
        [sys.executable, "-m", "gateway"], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2, proc.stderr
    assert "modgate gateway: cannot start: policy 'banked' (version 1) names bank(s) gifct" in proc.stderr
    assert "modgate bank add" in proc.stderr and "Traceback" not in proc.stderr
