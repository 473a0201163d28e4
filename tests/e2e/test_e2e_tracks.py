"""Every audio track is moderated, through the real stack: a threat spoken on the second audio
track of an mkv whose first (default) track is silent is caught on that track."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from modgate.client import Options
from modgate.tools.mediagen import AudioTrackSpec, Generated, MediaSpec, Speech
from modgate.tools.samples import THREAT
from modgate.v1 import moderation_pb2 as pb
from tests.e2e.conftest import Gateway, Services, metric_value

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

# Stream 0 video, 1 audio (default, silent, "eng"), 2 audio (the threat at 1.0 s, "fra").
SECOND_TRACK_THREAT = MediaSpec(
    container="mkv",
    width=320,
    height=240,
    fps=10,
    duration_s=6.0,
    audio="silence",
    audio_language="eng",
    audio_default=True,
    more_audio=(AudioTrackSpec(speech=(Speech(1.0, THREAT.text),), language="fra", default=False),),
)


def status(verdict: pb.Verdict, modality: int) -> pb.ModalityStatus:
    return next(m for m in verdict.modalities if m.modality == modality)


def speech_calls(gateway: Gateway) -> float:
    return metric_value(gateway.metrics(), "modgate_gateway_upstream_calls_total", service="speech")


def test_a_threat_on_the_second_audio_track_is_caught_on_that_track(
    gateway: Gateway, make_media: Callable[[MediaSpec], Generated]
) -> None:
    clip = make_media(SECOND_TRACK_THREAT)
    before = speech_calls(gateway)
    with gateway.client(timeout_s=120) as client:
        verdict = client.moderate_file(clip.path, options=Options(include_transcript=True))

    assert verdict.decision in (pb.DECISION_REVIEW, pb.DECISION_BLOCK), list(verdict.reasons)
    top = verdict.evidence[0]
    assert (top.modality, top.source, top.category) == (pb.MODALITY_AUDIO, pb.SOURCE_TRANSCRIPT, "violence")
    assert top.stream_index == 2
    [(start_s, end_s, _words)] = clip.more_speech_spans[0]
    assert abs(top.start_ms / 1000 - start_s) <= 0.5, (top.start_ms, start_s)
    assert top.end_ms / 1000 <= end_s + 0.5
    assert "where you live" in top.snippet.lower()
    assert status(verdict, pb.MODALITY_AUDIO).state == pb.MODALITY_STATE_OK
    assert speech_calls(gateway) == before + 2  # both tracks, the silent default one too
    heard = [s for s in verdict.transcript if "where you live" in s.text.lower()]
    assert heard and {s.stream_index for s in heard} == {2}
    audio = [
        (s.index, s.language, s.is_default, s.moderated)
        for s in verdict.media.streams
        if s.kind == pb.STREAM_KIND_AUDIO
    ]
    assert audio == [(1, "eng", True, True), (2, "fra", False, True)]


def test_a_track_over_the_limit_is_named_and_the_verdict_is_degraded_to_review(
    services: Services, start_gateway: Callable[..., Gateway], make_media: Callable[[MediaSpec], Generated]
) -> None:
    limited = start_gateway(
        "gateway-one-track", services.upstreams_yaml(), MODGATE_GATEWAY_MAX_AUDIO_TRACKS="1"
    )
    clip = make_media(SECOND_TRACK_THREAT)
    before = speech_calls(limited)
    with limited.client(timeout_s=120) as client:
        verdict = client.moderate_file(clip.path)

    assert speech_calls(limited) == before + 1  # the default track only
    assert verdict.decision == pb.DECISION_REVIEW and verdict.degraded
    assert not [e for e in verdict.evidence if e.modality == pb.MODALITY_AUDIO]
    [reason] = [r for r in verdict.reasons if r.startswith("not moderated")]
    assert "stream 2 (audio aac, fra)" in reason and "at least REVIEW" in reason
    [second] = [s for s in verdict.media.streams if s.index == 2]
    assert (second.moderated, second.over_limit) == (False, True)
    assert "MODGATE_GATEWAY_MAX_AUDIO_TRACKS" in second.reason
