"""What no modality looked at is always in the verdict.

Every audio or video stream whose content was not moderated (over a stream limit, no
decoder, nothing decodable in it, cover art) gets a reason naming it; MediaInfo.streams lists
every stream of the container either way. The streams left out only because of a limit
(MODGATE_GATEWAY_MAX_AUDIO_TRACKS / MAX_VIDEO_STREAMS) are content the policy would have
judged, so they mark the verdict degraded and, with MODGATE_GATEWAY_STREAMS_OVER_LIMIT=review
(the default, as the default policy does for a modality that did not run), make the decision
at least REVIEW: adding tracks must not be a way past moderation. (With `reject` such media
never gets here: the splitter refuses it.)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from gateway.fusion import Fused
from gateway.media.limits import StreamsOverLimit
from gateway.media.types import SplitMedia, StreamReport
from modgate.v1 import moderation_pb2 as pb


def not_moderated(media: SplitMedia | None) -> list[StreamReport]:
    return [] if media is None else media.info.not_moderated()


def with_coverage(fused: Fused, missing: Sequence[StreamReport], over_limit: StreamsOverLimit) -> Fused:
    """`fused` with the streams no modality saw (`missing`: not_moderated(media), or what the
    verdict store kept of it) in its reasons, and degraded (and, by `over_limit`, at least
    REVIEW) when a stream limit left some out."""
    if not missing:
        return fused
    reasons = list(fused.reasons)
    decision = fused.decision
    limited = [r for r in missing if r.over_limit]
    if limited:
        names = ", ".join(r.label() for r in limited)
        if over_limit is StreamsOverLimit.REVIEW:
            decision = max(decision, pb.DECISION_REVIEW)
            effect = "at least REVIEW (MODGATE_GATEWAY_STREAMS_OVER_LIMIT=review)"
        else:
            effect = "left out of the decision (MODGATE_GATEWAY_STREAMS_OVER_LIMIT=ignore)"
        reasons.append(f"not moderated, over the stream limits: {names}: {effect}")
    reasons += [f"not moderated: {r.label()}: {r.reason}" for r in missing if not r.over_limit]
    return dataclasses.replace(
        fused, decision=decision, reasons=reasons, degraded=fused.degraded or bool(limited)
    )
