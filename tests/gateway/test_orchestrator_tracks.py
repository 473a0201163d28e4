"""Every audio track is moderated: a real split of a generated multi-track mkv, the orchestrator,
and small aiohttp servers speaking the services' wire contract (see test_orchestrator.py).

The speech server "hears" a threat wherever the PCM it gets is loud, at the time it gets loud,
and nothing in silence; the text server scores "where you live" as violence. So the verdict
shows what the gateway sent where: a threat on a second, non-default track is only caught if
that track is transcribed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pytest
from aiohttp import web

from gateway import metrics
from gateway.app import service_pools
from gateway.config import GatewayConfig
from gateway.context import RequestContext
from gateway.errors import TooManyStreams
from gateway.job import ModerationJob, ModerationRequest
from gateway.media.intake import MediaSource
from gateway.media.limits import StreamsOverLimit
from gateway.media.split_stage import MediaSplitter
from gateway.media.worker import SplitWorkers
from gateway.orchestrator import Orchestrator
from gateway.upstreams.config import OrchestrationSettings, parse_upstreams
from modgate.tools.mediagen import AudioTrackSpec, Generated, MediaSpec, Speech
from modgate.v1 import moderation_pb2 as pb
from modgate.wire import ModelInfo, SpeechResult, SpeechSegment, TextItemResult, TextRequest, TextResult
from tests.gateway.test_orchestrator import POLICY, Handler, ref, serve, status
from tests.gateway.test_orchestrator_audio_first import vision_handler

pytestmark = pytest.mark.timeout(90)

Make = Callable[[MediaSpec], Generated]
THREAT = "I know where you live"
# Stream 0 video, 1 audio: default and silent, 2 audio: the threat at 2.0 s, 3 audio: silent.
TRACKS = MediaSpec(
    container="mkv",
    duration_s=4.0,
    audio="silence",
    audio_default=True,
    more_audio=(AudioTrackSpec(speech=(Speech(2.0, THREAT),), language="fra"), AudioTrackSpec()),
    gop=25,
)


@dataclass
class SpeechServer:
    """Hears THREAT where the audio is loud; counts calls and how many run at once."""

    delay_s: float = 0.0
    hears: bool = True  # False: a canary that hears nothing anywhere
    fail_loud: bool = False  # 503 for a track with sound in it
    calls: int = 0
    running: int = 0
    most_at_once: int = 0
    loud_calls: list[float] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        self.calls += 1
        self.running += 1
        self.most_at_once = max(self.most_at_once, self.running)
        try:
            form = await request.post()
            pcm = np.frombuffer(form["audio"].file.read(), dtype="<i2")  # type: ignore[union-attr]
            await asyncio.sleep(self.delay_s)
            loud = np.flatnonzero(np.abs(pcm) > 300)
            if loud.size and self.fail_loud:
                return web.json_response({"error": "overloaded"}, status=503)
            segments = []
            if loud.size and self.hears:
                start, end = loud[0] / 16000, loud[-1] / 16000
                self.loud_calls.append(start)
                segments = [
                    SpeechSegment(text=THREAT, start_s=start, end_s=end, avg_logprob=-0.2, no_speech_prob=0.0)
                ]
            result = SpeechResult(
                segments=segments,
                language="en",
                audio_seconds=len(pcm) / 16000,
                speech_seconds=sum(s.end_s - s.start_s for s in segments),
                model=ModelInfo(name="whisper-tiny.en", version="x"),
            )
            return web.json_response(text=result.model_dump_json())
        finally:
            self.running -= 1


async def threat_text(request: web.Request) -> web.Response:
    req = TextRequest.model_validate(await request.json())
    items = [
        TextItemResult(id=i.id, scores={"violence": 0.9 if "where you live" in i.text else 0.01}, matches=[])
        for i in req.items
    ]
    result = TextResult(
        items=items, model=ModelInfo(name="all-MiniLM-L6-v2", version="x"), policy=ref(POLICY)
    )
    return web.json_response(text=result.model_dump_json())


def moderate(
    clip: Generated,
    speech: SpeechServer,
    *,
    canary: SpeechServer | None = None,
    text: Handler = threat_text,
    config: dict[str, object] | None = None,
    **settings: object,
) -> pb.Verdict:
    async def main() -> pb.Verdict:
        handlers: dict[str, tuple[str, Handler]] = {
            "speech": ("/transcribe", speech.handle),
            "vision": ("/score", vision_handler),
            "text": ("/moderate", text),
        }
        runners, upstreams = [], {}
        for service, (path, handler) in handlers.items():
            runner, url = await serve({path: handler})
            runners.append(runner)
            upstreams[service] = {"stable": {"url": url}}
        if canary is not None:
            runner, url = await serve({"/transcribe": canary.handle})
            runners.append(runner)
            upstreams["speech"]["canary"] = {"url": url, "weight": 100, "shadow": True}
        gateway = GatewayConfig(split_workers=0, decode_threads=1, **(config or {}))  # type: ignore[arg-type]
        orchestration = OrchestrationSettings(metrics_port=0, retry_max_attempts=1, **settings)  # type: ignore[arg-type]
        orch = Orchestrator(
            service_pools(parse_upstreams(upstreams), orchestration),
            MediaSplitter(SplitWorkers(0), gateway),
            orchestration,
            streams_over_limit=gateway.streams_over_limit,
        )
        ctx = RequestContext(request_id="tracks-1", deadline=time.monotonic() + 30, policy=POLICY)
        request = pb.ModerateRequest(options=pb.ModerateOptions(include_transcript=True))
        job = ModerationJob(
            ModerationRequest.from_proto(request), MediaSource(clip.path, max_bytes=64 * 1024 * 1024), ctx
        )
        try:
            verdict = await orch.run(job)
            if canary is not None:
                await asyncio.sleep(0.5)  # the shadows are judged after the verdict
            return verdict
        finally:
            await orch.aclose()
            for runner in runners:
                await runner.cleanup()

    return asyncio.run(main())


def test_a_threat_on_the_second_track_is_caught_with_evidence_on_that_track(make_media: Make) -> None:
    clip = make_media(TRACKS)
    speech = SpeechServer()
    verdict = moderate(clip, speech)

    assert verdict.decision == pb.DECISION_BLOCK, list(verdict.reasons)
    top = verdict.evidence[0]
    assert (top.modality, top.source, top.category, top.stream_index) == (
        pb.MODALITY_AUDIO,
        pb.SOURCE_TRANSCRIPT,
        "violence",
        2,
    )
    assert abs(top.start_ms - 2000) <= 60, top.start_ms  # where it is spoken on its track
    assert speech.calls == 3  # every track, the silent default one included
    audio = status(verdict, pb.MODALITY_AUDIO)
    assert audio.state == pb.MODALITY_STATE_OK and audio.reason == ""
    assert abs(audio.items - 3 * 4000) <= 150  # audio ms of the three tracks
    assert [(s.stream_index, s.text) for s in verdict.transcript] == [(2, THREAT)]
    streams = [(s.index, s.kind, s.moderated, s.is_default) for s in verdict.media.streams]
    assert streams == [
        (0, pb.STREAM_KIND_VIDEO, True, False),
        (1, pb.STREAM_KIND_AUDIO, True, True),
        (2, pb.STREAM_KIND_AUDIO, True, False),
        (3, pb.STREAM_KIND_AUDIO, True, False),
    ]
    assert verdict.media.streams[2].language == "fra"
    assert not verdict.degraded
    assert not [r for r in verdict.reasons if "not moderated" in r]


def test_silent_tracks_only_say_no_speech_on_any_of_them(make_media: Make) -> None:
    spec = MediaSpec(container="mkv", duration_s=2.0, audio="silence", more_audio=(AudioTrackSpec(),))
    verdict = moderate(make_media(spec), SpeechServer())
    audio = status(verdict, pb.MODALITY_AUDIO)
    assert (audio.state, audio.reason) == (
        pb.MODALITY_STATE_OK,
        "no speech detected on any of the 2 audio tracks",
    )
    assert verdict.decision == pb.DECISION_ALLOW


@pytest.mark.parametrize("in_flight", [1, 2])
def test_tracks_are_transcribed_concurrently_up_to_the_setting(make_media: Make, in_flight: int) -> None:
    speech = SpeechServer(delay_s=0.3)
    verdict = moderate(make_media(TRACKS), speech, speech_tracks_in_flight=in_flight)
    assert speech.calls == 3 and speech.most_at_once == in_flight
    assert verdict.decision == pb.DECISION_BLOCK


def test_a_track_whose_speech_call_fails_fails_audio_and_names_the_track(make_media: Make) -> None:
    verdict = moderate(make_media(TRACKS), SpeechServer(fail_loud=True))
    audio = status(verdict, pb.MODALITY_AUDIO)
    assert audio.state == pb.MODALITY_STATE_FAILED
    assert audio.reason.startswith("audio track 2: "), audio.reason
    assert verdict.decision == pb.DECISION_REVIEW and verdict.degraded  # the policy: on_failed=review


@pytest.mark.parametrize(
    ("over_limit", "decision"),
    [(StreamsOverLimit.REVIEW, pb.DECISION_REVIEW), (StreamsOverLimit.IGNORE, pb.DECISION_ALLOW)],
)
def test_tracks_over_the_limit_are_reported_and_degrade_the_verdict(
    make_media: Make, over_limit: StreamsOverLimit, decision: int
) -> None:
    speech = SpeechServer()
    config = {"max_audio_tracks": 1, "streams_over_limit": over_limit}
    verdict = moderate(make_media(TRACKS), speech, config=config)

    assert speech.calls == 1  # only the default track
    assert verdict.decision == decision and verdict.degraded
    [reason] = [r for r in verdict.reasons if "not moderated" in r]
    assert reason.startswith(
        "not moderated, over the stream limits: stream 2 (audio aac, fra), stream 3 (audio aac)"
    )
    assert f"MODGATE_GATEWAY_STREAMS_OVER_LIMIT={over_limit.value}" in reason
    streams = {s.index: s for s in verdict.media.streams}
    assert [i for i, s in streams.items() if s.over_limit] == [2, 3]
    assert not streams[2].moderated and "MODGATE_GATEWAY_MAX_AUDIO_TRACKS" in streams[2].reason
    assert streams[1].moderated and not streams[1].over_limit
    assert status(verdict, pb.MODALITY_AUDIO).state == pb.MODALITY_STATE_OK


def test_with_reject_media_over_a_track_limit_is_refused(make_media: Make) -> None:
    speech = SpeechServer()
    config = {"max_audio_tracks": 2, "streams_over_limit": StreamsOverLimit.REJECT}
    with pytest.raises(TooManyStreams, match="3 audio tracks, over the limit of 2"):
        moderate(make_media(TRACKS), speech, config=config)
    assert speech.calls == 0  # refused before any speech call


def test_a_speech_shadow_is_judged_on_its_own_track(make_media: Make) -> None:
    def count(outcome: str) -> float:
        return metrics.SHADOW_REQUESTS.labels("speech", outcome)._value.get()

    before = {o: count(o) for o in ("agree", "disagree")}
    # The canary hears nothing: swapped in for track 2 it would allow the threat (disagree);
    # swapped in for a silent track it changes nothing (agree), as track 2's stable transcript stays.
    verdict = moderate(make_media(TRACKS), SpeechServer(), canary=SpeechServer(hears=False))
    assert verdict.decision == pb.DECISION_BLOCK
    assert count("disagree") - before["disagree"] == 1
    assert count("agree") - before["agree"] == 2


async def text_down(request: web.Request) -> web.Response:
    return web.json_response({"error": "model failed"}, status=500)


def test_a_transcript_whose_scoring_fails_is_still_returned_on_its_track(make_media: Make) -> None:
    verdict = moderate(make_media(TRACKS), SpeechServer(), text=text_down)
    audio = status(verdict, pb.MODALITY_AUDIO)
    assert audio.state == pb.MODALITY_STATE_FAILED
    assert audio.reason.startswith("audio track 2: transcribed, but scoring the transcript failed"), (
        audio.reason
    )
    assert [(s.stream_index, s.text) for s in verdict.transcript] == [(2, THREAT)]
