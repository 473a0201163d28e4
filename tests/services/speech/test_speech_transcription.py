"""Transcription quality and timing on real (espeak-ng) speech with the default engine, tiny.en."""

from __future__ import annotations

import numpy as np
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from modgate.tools.mediagen import SENTENCES, SR, Utterance, speech_track, tone
from modgate.tools.wer import word_error_rate
from modgate.wire import SpeechResult
from services.speech.audio import PcmAudio
from services.speech.engines import ChunkTranscript, SpeechEngine
from services.speech.pipeline import Transcriber

TOLERANCE_S = 0.5


def assert_segments_inside_speech(result: SpeechResult, spoken: list[Utterance]) -> None:
    """Every segment starts and ends within 0.5 s of spoken audio, never inside a long gap."""
    assert result.segments
    for segment in result.segments:
        assert segment.start_s < segment.end_s, segment
        assert any(u.start_s - TOLERANCE_S <= segment.start_s <= u.end_s + TOLERANCE_S for u in spoken), (
            f"segment {segment} starts outside the spoken regions {spoken}"
        )
        assert any(u.start_s - TOLERANCE_S <= segment.end_s <= u.end_s + TOLERANCE_S for u in spoken), (
            f"segment {segment} ends outside the spoken regions {spoken}"
        )


def transcript(result: SpeechResult) -> str:
    return " ".join(s.text for s in result.segments)


class CountingEngine:
    """The real engine, counting how often the pipeline calls it."""

    def __init__(self, engine: SpeechEngine) -> None:
        self.inner = engine
        self.calls = 0
        self.name, self.device = engine.name, engine.device
        self.multilingual, self.languages = engine.multilingual, engine.languages

    def transcribe(self, audio: np.ndarray, language: str | None) -> ChunkTranscript:
        self.calls += 1
        return self.inner.transcribe(audio, language)


def test_wer_and_segment_times_on_espeak_speech(
    tiny_transcriber: Transcriber, spoken_track: tuple[np.ndarray, list[Utterance]]
) -> None:
    audio, spoken = spoken_track
    result = tiny_transcriber.transcribe(PcmAudio.from_array(audio))

    wer = word_error_rate(" ".join(SENTENCES), transcript(result))
    assert wer <= 0.15, f"WER {wer:.1%}: {transcript(result)!r}"
    assert_segments_inside_speech(result, spoken)
    # The threat is there, word for word (what the text service will score).
    assert "going to hurt you" in transcript(result).lower()
    assert result.language == "en"
    assert result.audio_seconds == round(audio.shape[0] / SR, 3)
    spoken_seconds = sum(u.end_s - u.start_s for u in spoken)
    # VAD keeps the speech (plus padding) and drops most of the 2 s lead, gaps and tail.
    assert spoken_seconds <= result.speech_seconds < result.audio_seconds - 3.0
    assert result.model.name == "whisper-tiny.en"
    assert result.model.version == "1a5afae06a4d"  # sha256 prefix of the pinned model.bin
    assert result.model.engine == "faster-whisper/int8"
    assert {"vad_ms", "asr_ms", "queue_ms", "total_ms"} <= result.timings_ms.keys()


def test_float32_input_transcribes_like_int16(
    tiny_transcriber: Transcriber, spoken_track: tuple[np.ndarray, list[Utterance]]
) -> None:
    audio, _ = spoken_track
    as_int16 = tiny_transcriber.transcribe(PcmAudio.from_array(audio))
    as_float = tiny_transcriber.transcribe(PcmAudio.from_array(audio.astype(np.float32) / 32768.0))
    assert transcript(as_float) == transcript(as_int16)


def test_silence_and_tones_skip_the_model(tiny_transcriber: Transcriber) -> None:
    counting = CountingEngine(tiny_transcriber.engine)
    pipeline = Transcriber(counting, tiny_transcriber.vad, tiny_transcriber.model)
    sweep_t = np.arange(20 * SR) / SR
    sweep = (0.3 * np.sin(2 * np.pi * (200 + 40 * sweep_t) * sweep_t)).astype(np.float32)
    inputs = {
        "digital silence": np.zeros(60 * SR, np.int16),
        "440 Hz tone": tone(20.0),
        "two tones": (tone(20.0, hz=440) + tone(20.0, hz=1000)) / 2,
        "200-1000 Hz sweep": sweep,
        "quiet hiss": np.random.default_rng(1).normal(0, 0.003, 20 * SR).astype(np.float32),
    }
    for label, samples in inputs.items():
        result = pipeline.transcribe(PcmAudio.from_array(samples))
        assert result.segments == [], label
        assert result.speech_seconds == 0.0, label
    assert counting.calls == 0


def test_long_audio_is_windowed_and_timestamps_stay_on_the_original_timeline(
    tiny_transcriber: Transcriber,
) -> None:
    """~60 s of audio with ~35 s of speech: two model chunks, VAD state carried over 30 s windows."""
    sentences = SENTENCES * 2
    audio, spoken = speech_track(sentences, lead_s=4.0, gap_s=1.5, tail_s=3.0)
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    counting = CountingEngine(tiny_transcriber.engine)
    pipeline = Transcriber(
        counting, tiny_transcriber.vad, tiny_transcriber.model, tracer=provider.get_tracer("test")
    )

    result = pipeline.transcribe(PcmAudio.from_array(audio))

    assert counting.calls == 2  # > 30 s of speech needs two Whisper windows, not one per sentence
    wer = word_error_rate(" ".join(sentences), transcript(result))
    assert wer <= 0.15, f"WER {wer:.1%}: {transcript(result)!r}"
    assert_segments_inside_speech(result, spoken)
    # The last sentence (well past the first 30 s VAD window) lands where it was spoken.
    assert abs(result.segments[-1].start_s - spoken[-1].start_s) <= TOLERANCE_S
    assert spoken[-1].start_s > 45.0
    (span,) = exporter.get_finished_spans()
    assert span.name == "speech.transcribe"
    assert span.attributes is not None
    assert span.attributes["modgate.model.id"] == "whisper-tiny.en@1a5afae06a4d"
    assert span.attributes["modgate.audio.seconds"] == result.audio_seconds
    assert span.attributes["modgate.speech.seconds"] == result.speech_seconds
    assert span.attributes["modgate.segments"] == len(result.segments)
    assert span.attributes["modgate.speech.chunks"] == 2
