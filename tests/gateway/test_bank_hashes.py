"""PDQ matches from the vision service in the verdict: merged across frame-chunk calls, the
policy's video rule applied, evidence VISUAL / FRAME / hash, the bank's action as a floor even
when VISUAL runs uncalibrated."""

from __future__ import annotations

import asyncio
import json

import pytest
from aiohttp import web

from gateway.fusion import Fused
from gateway.orchestrator.hashes import video_findings, with_bank_findings
from modgate.policy import Policy
from modgate.v1 import moderation_pb2 as pb
from modgate.wire import BankRef, FrameHash, FrameScore, HashMatch, HashResult, ModelInfo, VisionResult
from tests.gateway.test_orchestrator import Handler, job, media, orchestrator, ref, serve, status
from tests.modgate.banks.policies import policy_with_banks

pytestmark = pytest.mark.timeout(60)

PDQ = "ab" * 32
BANKED = policy_with_banks({"known": {"category": "violence"}})
REVIEWED = policy_with_banks({"known": {"category": "hate", "action": "REVIEW"}})


def vision_handler(policy: Policy, matched_ms: range, calls: list[list[int]]) -> Handler:
    """An uncalibrated vision service whose frames at `matched_ms` match entry e-<ms>."""

    async def handle(request: web.Request) -> web.Response:
        form = await request.post()
        stamps = json.loads(str(form["timestamps_ms"]))
        calls.append(stamps)
        frames = [FrameHash(index=i, timestamp_ms=t, pdq=PDQ, quality=90) for i, t in enumerate(stamps)]
        matches = [
            HashMatch(
                bank="known",
                entry_id=f"e-{t}",
                category=policy.banks["known"].category,
                distance=i % 7,
                frame_index=i,
                timestamp_ms=t,
                quality=90,
                content_id="banked.mp4",
                content_ms=t - matched_ms.start,
            )
            for i, t in enumerate(stamps)
            if t in matched_ms
        ]
        result = VisionResult(
            frames=[
                FrameScore(index=i, timestamp_ms=t, scores={"violence": 0.0}, best_prompts={})
                for i, t in enumerate(stamps)
            ],
            duplicates_skipped=0,
            batch_sizes=[len(stamps)],
            model=ModelInfo(name="ViT-B-32", version="x", calibrated=False),
            policy=ref(policy),
            hashes=HashResult(
                frames=frames, matches=matches, banks=[BankRef(name="known", generation=1, entries=40)]
            ),
        )
        return web.json_response(text=result.model_dump_json())

    return handle


def run(policy: Policy, matched_ms: range, frames: int = 40) -> tuple[pb.Verdict, list[list[int]]]:
    calls: list[list[int]] = []

    async def main() -> pb.Verdict:
        runner, url = await serve({"/score": vision_handler(policy, matched_ms, calls)})
        orch = orchestrator({"vision": url}, media(frames=frames), vision_frames_per_call=16)
        try:
            # TEXT skipped: the media's metadata would go to a text service that is not there.
            request = pb.ModerateRequest(options=pb.ModerateOptions(skip_modalities=[pb.MODALITY_TEXT]))
            return await orch.run(job(request, media=True, policy=policy))
        finally:
            await orch.aclose()
            await runner.cleanup()

    return asyncio.run(main()), calls


def test_pdq_matches_across_chunks_block_with_hash_evidence_at_the_frame_times() -> None:
    # 40 frames every 500 ms, in 3 vision calls; frames from 5.0 s to 14.5 s match (20 frames).
    verdict, calls = run(BANKED, range(5000, 15000))
    assert sorted(len(c) for c in calls) == [8, 16, 16]
    assert status(verdict, pb.MODALITY_VISUAL).state == pb.MODALITY_STATE_UNCALIBRATED
    assert verdict.decision == pb.DECISION_BLOCK and not verdict.degraded
    hashes = [e for e in verdict.evidence if e.signal == "hash"]
    assert [e.start_ms for e in hashes] == list(range(5000, 15000, 500))
    assert [e.frame_index for e in hashes] == list(range(10, 30))
    assert all(e.end_ms == e.start_ms + 500 for e in hashes)
    first = hashes[0]
    assert (first.modality, first.source, first.category) == (pb.MODALITY_VISUAL, pb.SOURCE_FRAME, "violence")
    match = first.bank_match
    assert (match.bank, match.entry_id, match.signal_type, match.distance, match.action) == (
        "known",
        "e-5000",
        "pdq",
        10 % 7,  # the request frame index's distance: frame 10 came back in the first chunk
        "BLOCK",
    )
    assert (match.content_id, match.content_ms) == ("banked.mp4", 0)
    assert hashes[-1].bank_match.content_ms == 9500
    assert any(
        r.startswith("known content: bank known (violence) matched 20 of 40 frames") for r in verdict.reasons
    ), verdict.reasons
    violence = next(c for c in verdict.categories if c.category == "violence")
    assert violence.decision == pb.DECISION_BLOCK and violence.by_modality["VISUAL"] > 0


def test_the_banks_action_and_category_are_the_policys() -> None:
    verdict, _ = run(REVIEWED, range(0, 20000))
    assert verdict.decision == pb.DECISION_REVIEW
    assert {e.category for e in verdict.evidence if e.signal == "hash"} == {"hate"}
    assert {e.bank_match.action for e in verdict.evidence if e.signal == "hash"} == {"REVIEW"}


def test_matches_under_the_video_rule_add_a_reason_not_an_action() -> None:
    # 2 of 40 frames (5%, 1.0 s): under the default rule (25% or 3 s).
    verdict, _ = run(BANKED, range(7000, 8000))
    assert verdict.decision == pb.DECISION_ALLOW
    assert not [e for e in verdict.evidence if e.signal == "hash"]
    assert any("bank known: 2 of 40 frames (5%), 1.0 s matched" in r for r in verdict.reasons), (
        verdict.reasons
    )


def test_no_match_no_change() -> None:
    verdict, _ = run(BANKED, range(0))
    assert verdict.decision == pb.DECISION_ALLOW
    assert not [r for r in verdict.reasons if "bank" in r]


def _hashes(stamps: list[int], matched: set[int]) -> HashResult:
    return HashResult(
        frames=[FrameHash(index=i, timestamp_ms=t, pdq=PDQ, quality=90) for i, t in enumerate(stamps)],
        matches=[
            HashMatch(
                bank="known",
                entry_id=f"e{i}",
                category="violence",
                distance=3,
                frame_index=i,
                timestamp_ms=t,
                quality=90,
            )
            for i, t in enumerate(stamps)
            if i in matched
        ],
        banks=[],
    )


def test_the_video_rule_holds_within_one_video_stream() -> None:
    # Two streams interleaved (frames 0,2,4.. stream 0; 1,3,5.. stream 1), each at 0..9 s.
    stamps = [1000 * (i // 2) for i in range(20)]
    streams = [i % 2 for i in range(20)]
    matched = {i for i in range(20) if i % 2 == 1 and i >= 13}  # stream 1 at 6..9 s: 4 of 10 frames
    findings = video_findings(BANKED, _hashes(stamps, matched), duration_ms=10_000, frame_streams=streams)
    (finding,) = findings
    assert finding.fired and finding.frames_considered == 10 and finding.frames_matched == 4
    assert [m.frame_index for m in finding.matches] == [13, 15, 17, 19]  # request frame indexes
    fused = Fused(pb.DECISION_ALLOW, 0.0, [], [], [], ["no category reached its review threshold"], False)
    out = with_bank_findings(
        fused, BANKED, findings, hashes=_hashes(stamps, matched), frame_streams=streams, duration_ms=10_000
    )
    assert out.decision == pb.DECISION_BLOCK
    assert [e.stream_index for e in out.evidence] == [1, 1, 1, 1]
    # Each frame stands for the time to its own stream's next frame (1 s), not its neighbour's.
    assert [(e.start_ms, e.end_ms) for e in out.evidence] == [(t, t + 1000) for t in (6000, 7000, 8000, 9000)]
    assert "no category reached its review threshold" not in out.reasons
