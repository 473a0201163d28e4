"""`modgate moderate`'s readable verdict names the streams once a file has several."""

from __future__ import annotations

from modgate.tools.moderate_cmd import format_verdict
from modgate.v1 import moderation_pb2 as pb


def stream(index: int, kind: int, codec: str, **fields: object) -> pb.MediaStream:
    return pb.MediaStream(index=index, kind=kind, codec=codec, **fields)  # type: ignore[arg-type]


def verdict(*streams: pb.MediaStream, transcript_streams: tuple[int, ...] = (2,)) -> pb.Verdict:
    return pb.Verdict(
        decision=pb.DECISION_BLOCK,
        evidence=[
            pb.Evidence(
                category="violence",
                score=0.9,
                modality=pb.MODALITY_AUDIO,
                source=pb.SOURCE_TRANSCRIPT,
                start_ms=2000,
                end_ms=3000,
                snippet="I know where you live",
                frame_index=-1,
                signal="semantic",
                stream_index=2,
            )
        ],
        transcript=[
            pb.TranscriptSegment(text="I know where you live", start_ms=2000, end_ms=3000, stream_index=i)
            for i in transcript_streams
        ],
        media=pb.MediaInfo(
            duration_ms=4000,
            container="mkv",
            width=320,
            height=240,
            has_audio=True,
            has_video=True,
            frames_sampled=4,
            streams=list(streams),
        ),
    )


VIDEO = stream(0, pb.STREAM_KIND_VIDEO, "h264", width=320, height=240, moderated=True, frames_sampled=4)
SILENT = stream(1, pb.STREAM_KIND_AUDIO, "aac", language="eng", is_default=True, moderated=True)
THREAT = stream(2, pb.STREAM_KIND_AUDIO, "aac", language="fra", moderated=True)


def test_several_audio_tracks_get_a_streams_section_and_evidence_names_its_track() -> None:
    extra = stream(3, pb.STREAM_KIND_AUDIO, "aac", reason="over the limit of 2 audio tracks", over_limit=True)
    text = format_verdict(verdict(VIDEO, SILENT, THREAT, extra, transcript_streams=(1, 2)))
    lines = text.splitlines()
    assert "mkv, 4.0 s, 320x240, 4 frames sampled, 3 audio tracks" not in text  # only moderated ones count
    assert any(
        line.startswith("media: mkv, 4.0 s, 320x240, 4 frames sampled, 2 audio tracks") for line in lines
    )
    section = lines[lines.index("Streams") + 1 : lines.index("Streams") + 5]
    assert section[0].startswith("  #0  video h264 320x240") and section[0].endswith("moderated, 4 frames")
    assert "audio aac eng (default)" in section[1] and section[1].endswith("moderated")
    assert section[3].endswith("NOT moderated: over the limit of 2 audio tracks")
    evidence = next(line for line in lines if line.strip().startswith("AUDIO"))
    assert "[transcript #2, semantic]" in evidence
    assert "  00:02.0-00:03.0  [#1] I know where you live" in lines


def test_a_one_track_file_prints_as_before() -> None:
    text = format_verdict(verdict(VIDEO, THREAT))
    assert "Streams" not in text.splitlines()
    assert "[transcript, semantic]" in text
    assert "  00:02.0-00:03.0  I know where you live" in text.splitlines()
    assert "media: mkv, 4.0 s, 320x240, 4 frames sampled, audio" in text


def test_the_stored_verdict_is_named_and_a_stored_answer_says_so() -> None:
    decided = verdict(VIDEO, THREAT)
    assert "Verdict:" not in format_verdict(decided)  # no store: nothing to name
    decided.verdict_id = "5a6092430a1f4d238c7e9032adf5a044"
    lines = format_verdict(decided).splitlines()
    assert lines[-1] == f"Verdict: {decided.verdict_id}  (modgate verdicts show {decided.verdict_id})"
    decided.from_store = True
    assert format_verdict(decided).splitlines()[-1].endswith("answered from the store (decided before)")
