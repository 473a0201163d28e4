"""Matcher hits as the wire's HashResult (what the vision service returns and the rules read)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from modgate.banks.matcher import LoadedBank, PdqHit
from modgate.policy import Policy
from modgate.wire import BankRef, FrameHash, HashMatch, HashResult


def hash_result(
    policy: Policy,
    timestamps_ms: Sequence[int],
    codes: np.ndarray,
    qualities: np.ndarray,
    hits: Sequence[PdqHit],
    *,
    banks: Mapping[str, LoadedBank],
    notes: Sequence[str] = (),
    timings_ms: Mapping[str, float] | None = None,
) -> HashResult:
    """Frames (quality < 0: not decodable, sent as pdq "") and their matches, for `policy`."""
    frames = [
        FrameHash(
            index=i,
            timestamp_ms=int(timestamps_ms[i]),
            pdq=codes[i].tobytes().hex() if qualities[i] >= 0 else "",
            quality=max(int(qualities[i]), 0),
        )
        for i in range(len(qualities))
    ]
    matches = [
        HashMatch(
            bank=hit.bank,
            entry_id=hit.entry.entry_id,
            category=policy.banks[hit.bank].category,
            distance=hit.distance,
            frame_index=hit.frame,
            timestamp_ms=int(timestamps_ms[hit.frame]),
            quality=int(qualities[hit.frame]),
            entry_category=hit.entry.category,
            content_id=hit.entry.content_id,
            content_ms=hit.entry.content_ms,
        )
        for hit in hits
    ]
    refs = [
        BankRef(name=name, generation=banks[name].generation, entries=banks[name].entries)
        for name in policy.banks
        if name in banks
    ]
    return HashResult(
        frames=frames, matches=matches, banks=refs, notes=list(notes), timings_ms=dict(timings_ms or {})
    )
