"""PDQ matching survives what re-uploads do to a clip, and does not match unrelated clips.

Library level, through the code paths moderation and `modgate bank add` use: files are split
by the gateway's splitter with the gateway's sampling (modgate.banks.filehash), frames are
PDQ-hashed, looked up in a real bank directory and judged by the policy's video rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from modgate.banks.entries import utc_now
from modgate.banks.filehash import HashedMedia, hash_media_file, media_entries
from modgate.banks.matcher import BankMatcher
from modgate.banks.pdq import codes_from_hex
from modgate.banks.results import hash_result
from modgate.banks.rules import VideoFinding, evaluate_video
from modgate.banks.store import BankStore
from modgate.policy import Policy
from modgate.tools.mediagen.scenes import REUPLOAD_EDITS, make_clip, reupload
from tests.modgate.banks.policies import policy_with_banks

CLIP_S = 20.0
UNRELATED = 20


@dataclass(frozen=True)
class Banked:
    original: Path
    media: HashedMedia
    matcher: BankMatcher
    policy: Policy
    work: Path


@pytest.fixture(scope="module")
def banked(tmp_path_factory: pytest.TempPathFactory) -> Banked:
    work = tmp_path_factory.mktemp("bank-robustness")
    original = make_clip(work / "original.mp4", seed=1, duration_s=CLIP_S)
    media = hash_media_file(original)
    store = BankStore(work / "banks")
    entries = media_entries(
        media, category="violence", source="test", added_at=utc_now(), content_id="original", min_quality=50
    )
    store.add_entries("known", entries)
    policy = policy_with_banks({"known": {"category": "violence", "action": "BLOCK"}})
    return Banked(original, media, BankMatcher(store.root), policy, work)


def judge(banked: Banked, path: Path) -> tuple[HashedMedia, list[VideoFinding]]:
    media = hash_media_file(path)
    codes = codes_from_hex([f.pdq for f in media.frames])
    qualities = np.array([f.quality for f in media.frames])
    times = [f.timestamp_ms for f in media.frames]
    lookup = banked.matcher.match_pdq(codes, qualities, banked.policy.banks)
    assert lookup.notes == []
    result = hash_result(banked.policy, times, codes, qualities, lookup.hits, banks=lookup.banks)
    return media, evaluate_video(banked.policy, result, duration_ms=media.duration_ms)


def interval_ms(media: HashedMedia) -> float:
    return float(np.median(np.diff([f.timestamp_ms for f in media.frames])))


def test_the_bank_holds_the_clips_sampled_frames(banked: Banked) -> None:
    info = banked.matcher.banks["known"]
    frames = [f for f in banked.media.frames if f.quality >= 50]
    assert len(banked.media.frames) == 20 and interval_ms(banked.media) == 1000  # the gateway's 1 fps
    assert info.entries == 2 + len({f.pdq for f in frames})
    assert banked.matcher.match_exact(md5=banked.media.md5, sha256=banked.media.sha256)


def edit(banked: Banked, name: str) -> tuple[Path, int]:
    """The edited file and where the clip starts in it (ms; negative: its start was cut)."""
    if name == "same file":
        return banked.original, 0
    path, start_ms = reupload(banked.original, banked.work, name)
    if name == "lower bitrate":
        assert path.stat().st_size * 4 < banked.original.stat().st_size
    return path, start_ms


@pytest.mark.parametrize("name", ["same file", *REUPLOAD_EDITS])
def test_an_edited_reupload_matches_at_the_right_times(banked: Banked, name: str) -> None:
    path, start_ms = edit(banked, name)
    media, findings = judge(banked, path)
    assert [f.bank for f in findings] == ["known"], f"{name}: no match"
    (finding,) = findings
    assert finding.fired and finding.action == "BLOCK" and finding.category == "violence", finding.reason

    step = interval_ms(media)
    clip_end_ms = start_ms + CLIP_S * 1000
    inside = [f for f in media.frames if max(start_ms, 0) <= f.timestamp_ms < clip_end_ms]
    for match in finding.matches:
        # The frame shows the clip at (its time - start); the closest banked frame must be the
        # one sampled near that moment (within a sampling interval), not some other scene.
        assert start_ms - step <= match.timestamp_ms <= clip_end_ms + step, (name, match)
        assert match.content_id == "original" and match.content_ms is not None
        assert abs((match.timestamp_ms - start_ms) - match.content_ms) <= step, (name, match)
        assert match.distance <= 31
    assert finding.frames_matched >= 0.8 * len(inside), (name, finding.reason)
    if name == "same file":
        assert {m.distance for m in finding.matches} == {0}
        assert banked.matcher.match_exact(md5=media.md5, sha256=media.sha256)
    else:
        assert not banked.matcher.match_exact(md5=media.md5, sha256=media.sha256)


def test_unrelated_clips_do_not_match(banked: Banked) -> None:
    closest = []
    for seed in range(200, 200 + UNRELATED):
        path = banked.work / f"unrelated-{seed}.mp4"
        make_clip(path, seed=seed, duration_s=6.0, width=640, height=360)
        media, findings = judge(banked, path)
        assert findings == [], (seed, [f.reason for f in findings])
        assert all(f.quality >= 50 for f in media.frames)  # matchable frames, not a quality pass
        bank = codes_from_hex([f.pdq for f in banked.media.frames])
        query = codes_from_hex([f.pdq for f in media.frames])
        closest.append(int(np.bitwise_count(query[:, None, :] ^ bank[None, :, :]).sum(axis=2).min()))
    # Varied content: even the closest pair of frames is far from the threshold of 31.
    assert min(closest) > 60, closest
