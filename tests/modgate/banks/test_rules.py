"""The policy's video rule over PDQ frame matches, and the exact short-circuit selection."""

from __future__ import annotations

import pytest

from modgate.banks.entries import BankEntry
from modgate.banks.matcher import ExactHit
from modgate.banks.rules import evaluate_exact, evaluate_video, frame_seconds, merge_hash_results
from modgate.banks.signals import SignalType
from modgate.policy import BankAction
from modgate.wire import BankRef, FrameHash, HashMatch, HashResult
from tests.modgate.banks.policies import policy_with_banks

PDQ = "ab" * 32


def result(times: list[int], matched: dict[int, int], bank: str = "known", quality: int = 100) -> HashResult:
    """Frames at `times`; frame index -> distance for the matched ones (plus a farther duplicate)."""
    frames = [FrameHash(index=i, timestamp_ms=t, pdq=PDQ, quality=quality) for i, t in enumerate(times)]
    matches = []
    for index, distance in matched.items():
        for extra in (0, 5):  # the closest and a second entry per frame
            matches.append(
                HashMatch(
                    bank=bank,
                    entry_id=f"e{index}-{extra}",
                    category="violence",
                    distance=distance + extra,
                    frame_index=index,
                    timestamp_ms=times[index],
                    quality=quality,
                )
            )
    return HashResult(frames=frames, matches=matches, banks=[BankRef(name=bank, generation=1, entries=9)])


def test_frame_seconds_span_to_the_next_frame_and_to_the_end() -> None:
    assert frame_seconds([0, 1000, 3000], duration_ms=3500).tolist() == [1.0, 2.0, 0.5]
    assert frame_seconds([0, 1000, 2000]).tolist() == [1.0, 1.0, 1.0]  # last: the median interval
    assert frame_seconds([500]).tolist() == [0.0]


def test_embedded_clip_fires_on_seconds_though_most_frames_do_not_match() -> None:
    policy = policy_with_banks(
        {"known": {"category": "violence", "video": {"min_fraction": 0.5, "min_seconds": 4}}}
    )
    times = list(range(0, 20_000, 1000))
    (finding,) = evaluate_video(policy, result(times, {i: 10 for i in range(8, 13)}), duration_ms=20_000)
    assert finding.fired and finding.action is BankAction.BLOCK and finding.category == "violence"
    assert (finding.frames_matched, finding.frames_considered) == (5, 20)
    assert finding.matched_fraction == 0.25 and finding.matched_seconds == 5.0
    assert finding.span_ms == (8000, 12_000)
    assert [m.entry_id for m in finding.matches] == [f"e{i}-0" for i in range(8, 13)]  # closest per frame
    assert finding.reason == "5 of 20 frames (25%), 5.0 s matched; rule: >= 50% or >= 4.0 s"


@pytest.mark.parametrize(
    ("video", "fired"),
    [
        ({"min_fraction": 0.1, "min_seconds": 10, "require": "all"}, False),
        ({"min_fraction": 0.1, "min_seconds": 2, "require": "all"}, True),
        ({"min_fraction": None, "min_seconds": 4}, False),
        ({"min_fraction": 0.15, "min_seconds": None}, True),
        ({"min_fraction": None, "min_seconds": None}, True),
    ],
)
def test_any_and_all(video: dict, fired: bool) -> None:
    policy = policy_with_banks({"known": {"category": "violence", "video": video}})
    (finding,) = evaluate_video(policy, result(list(range(0, 20_000, 1000)), {3: 1, 4: 1, 5: 1}))
    assert finding.fired is fired


def test_low_quality_frames_do_not_dilute_the_fraction() -> None:
    policy = policy_with_banks(
        {"known": {"category": "violence", "video": {"min_fraction": 0.5, "min_seconds": None}}}
    )
    hashed = result([0, 1000, 2000, 3000], {0: 3, 1: 3})
    dark = [f.model_copy(update={"quality": 10}) if f.index >= 2 else f for f in hashed.frames]
    (finding,) = evaluate_video(policy, hashed.model_copy(update={"frames": dark}))
    assert (finding.frames_considered, finding.matched_fraction, finding.fired) == (2, 1.0, True)


def test_results_of_several_vision_requests_merge_into_one_timeline() -> None:
    policy = policy_with_banks(
        {"known": {"category": "violence", "video": {"min_fraction": 0.5, "min_seconds": None}}}
    )
    first = result([0, 1000], {1: 2})
    second = result([2000, 3000], {0: 2, 1: 4})
    merged = merge_hash_results([first, None, second])
    assert merged is not None
    assert [f.index for f in merged.frames] == [0, 1, 2, 3]
    (finding,) = evaluate_video(policy, merged)
    assert [(m.frame_index, m.timestamp_ms) for m in finding.matches] == [(1, 1000), (2, 2000), (3, 3000)]
    assert finding.matched_fraction == 0.75
    with pytest.raises(ValueError, match="merge_hash_results"):
        evaluate_video(
            policy, HashResult(frames=first.frames + second.frames, matches=first.matches, banks=[])
        )
    assert merge_hash_results([None]) is None


def test_no_match_or_bank_outside_the_policy_gives_no_finding() -> None:
    policy = policy_with_banks({"known": {"category": "violence"}})
    assert evaluate_video(policy, result([0, 1000], {})) == []
    assert evaluate_video(policy, result([0, 1000], {0: 1}, bank="other")) == []
    assert evaluate_video(policy, None) == []


def test_exact_hits_short_circuit_per_policy() -> None:
    policy = policy_with_banks(
        {
            "review-only": {"category": "hate", "action": "REVIEW"},
            "no-shortcut": {"category": "violence", "exact_short_circuit": False},
            "block": {"category": "violence"},
        }
    )
    entry = BankEntry("e1", SignalType.MD5, "00" * 16)
    hits = [
        ExactHit(bank, SignalType.MD5, entry) for bank in ("review-only", "no-shortcut", "block", "unlisted")
    ]
    findings = evaluate_exact(policy, hits)
    assert [(f.bank, f.action, f.short_circuit) for f in findings] == [
        ("block", BankAction.BLOCK, True),
        ("review-only", BankAction.REVIEW, True),
        ("no-shortcut", BankAction.BLOCK, False),
    ]
