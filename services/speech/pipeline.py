"""One request: validated PCM -> VAD -> speech packed into <=30 s chunks -> engine -> SpeechResult.

Only speech reaches the model: the VAD regions are cut out of the (memory-mapped) audio, packed
back to back into chunks of at most one Whisper window, and each chunk's segment times are
mapped back onto the original timeline. Silence, tone and music therefore cost one VAD pass and
no model call at all.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from opentelemetry import trace

from modgate.wire import ModelInfo, SpeechResult, SpeechSegment
from services.speech.audio import SAMPLE_RATE, AudioError, PcmAudio
from services.speech.config import SpeechSettings
from services.speech.engines import ChunkSegment, ChunkTranscript, SpeechEngine, build_engine
from services.speech.models import resolve
from services.speech.sentences import sentence_text, split_sentences
from services.speech.vad import Region, SileroVad, VadParams, pack

if TYPE_CHECKING:
    from services.speech.routing import RoutedTranscriber

log = logging.getLogger(__name__)

# Span attribute keys; MODEL_ID, VARIANT and BATCH_SIZE match modgate.telemetry.Attr.
ATTR_MODEL_ID = "modgate.model.id"
ATTR_VARIANT = "modgate.variant"
ATTR_BATCH_SIZE = "modgate.batch_size"
ATTR_AUDIO_SECONDS = "modgate.audio.seconds"
ATTR_SPEECH_SECONDS = "modgate.speech.seconds"
ATTR_SEGMENTS = "modgate.segments"
ATTR_CHUNKS = "modgate.speech.chunks"


@dataclass(frozen=True)
class ChunkLayout:
    """Regions packed back to back into one model chunk: maps chunk time to original time."""

    regions: list[Region]

    def region_at(self, packed_s: float) -> int:
        """Index of the region that chunk time ``packed_s`` falls in (clamped to the last)."""
        position = max(0, round(packed_s * SAMPLE_RATE))
        offset = 0
        for i, region in enumerate(self.regions):
            offset += region.samples
            if position < offset:
                return i
        return len(self.regions) - 1

    def to_original(self, packed_s: float, region: int) -> float:
        """Original time of chunk time ``packed_s``, kept inside ``region``."""
        offset = sum(r.samples for r in self.regions[:region])
        target = self.regions[region]
        local = min(max(0, round(packed_s * SAMPLE_RATE) - offset), target.samples)
        return (target.start + local) / SAMPLE_RATE

    def span(self, start_s: float, end_s: float) -> tuple[float, float]:
        """Original (start, end) of a word or segment: both ends inside the region it starts in.

        Regions are separated by real pauses, so a word that seems to run past its region's
        end is alignment overshoot (Whisper stretches last words into what follows), not speech.
        """
        region = self.region_at(start_s)
        start = self.to_original(start_s, region)
        return start, max(start, self.to_original(end_s, region))

    def audio(self, source: PcmAudio) -> np.ndarray:
        return np.concatenate([source.window(r.start, r.stop) for r in self.regions])


class Transcriber:
    """Holds the loaded engine and VAD; one transcription at a time (the model owns the cores)."""

    def __init__(
        self,
        engine: SpeechEngine,
        vad: SileroVad,
        model: ModelInfo,
        tracer: trace.Tracer | None = None,
    ) -> None:
        self.engine = engine
        self.vad = vad
        self.model = model
        self._tracer = tracer or trace.get_tracer(__name__)
        # Two requests decoding at once would each get half the cores and both finish late;
        # queueing them keeps the first one fast (its chunks share the cores: see _decode).
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None

    @property
    def model_id(self) -> str:
        return f"{self.model.name}@{self.model.version}"

    def _decode(self, pieces: list[np.ndarray], language: str | None) -> list[ChunkTranscript]:
        """Transcribe independent chunks, up to engine.parallel at once, in order."""
        parallel = min(getattr(self.engine, "parallel", 1), len(pieces))
        if parallel <= 1:
            return [self.engine.transcribe(piece, language) for piece in pieces]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.engine.parallel, thread_name_prefix="speech-chunk")
        return list(self._pool.map(lambda piece: self.engine.transcribe(piece, language), pieces))

    def detect(self, audio: PcmAudio, candidates: frozenset[str]) -> tuple[str, float] | None:
        """The language of the first speech window among `candidates` (None: no speech, or an
        engine that cannot tell)."""
        detect = getattr(self.engine, "detect", None)
        if detect is None:
            return None
        with self._lock:
            layouts = [ChunkLayout(group) for group in pack(self.vad.regions(audio))]
            if not layouts:
                return None
            with self._tracer.start_as_current_span(
                "speech.detect_language", attributes={ATTR_MODEL_ID: self.model_id}
            ):
                return detect(layouts[0].audio(audio), candidates)

    def check_language(self, language: str | None) -> str | None:
        """Normalise a language hint ("" and "auto" mean detect) or raise AudioError(422)."""
        if language is None:
            return None
        code = language.strip().lower()
        if code in ("", "auto"):
            return None
        if code not in self.engine.languages:
            if not self.engine.multilingual:
                hint = f"{self.model.name} is English-only: send 'en' or no language"
            else:
                hint = "send an ISO 639-1 code Whisper knows (e.g. 'en', 'de') or no language to detect it"
            raise AudioError(422, "language", f"language {language!r} is not supported: {hint}")
        return code

    def transcribe(self, audio: PcmAudio, language: str | None = None) -> SpeechResult:
        started = time.perf_counter()
        language = self.check_language(language)
        language_given = language is not None
        timings: dict[str, float] = {}
        attributes = {
            ATTR_MODEL_ID: self.model_id,
            ATTR_VARIANT: self.model.variant,
            # One request per decode (the lock below): the model never batches across requests.
            ATTR_BATCH_SIZE: 1,
            ATTR_AUDIO_SECONDS: round(audio.seconds, 3),
        }
        with self._tracer.start_as_current_span("speech.transcribe", attributes=attributes) as span:
            with self._lock:
                timings["queue_ms"] = _ms_since(started)
                with _timed(timings, "vad_ms"):
                    regions = self.vad.regions(audio)
                layouts = [ChunkLayout(group) for group in pack(regions)]
                segments: list[SpeechSegment] = []
                detected = language or ("" if self.engine.multilingual else "en")
                probability = 0.0 if self.engine.multilingual else 1.0
                with _timed(timings, "asr_ms"):
                    chunks: list[ChunkTranscript] = []
                    if language is None and self.engine.multilingual and layouts:
                        # Later chunks reuse the first chunk's language: cheaper and consistent.
                        first = self.engine.transcribe(layouts[0].audio(audio), None)
                        language = detected = first.language
                        probability = first.language_probability
                        chunks.append(first)
                    chunks += self._decode([lay.audio(audio) for lay in layouts[len(chunks) :]], language)
                    for layout, chunk in zip(layouts, chunks, strict=True):
                        for chunk_segment in chunk.segments:
                            if chunk_segment.text:
                                segments.extend(_to_original(layout, chunk_segment))
            speech_seconds = sum(r.samples for r in regions) / SAMPLE_RATE
            span.set_attribute(ATTR_SPEECH_SECONDS, round(speech_seconds, 3))
            span.set_attribute(ATTR_SEGMENTS, len(segments))
            span.set_attribute(ATTR_CHUNKS, len(layouts))
        timings["total_ms"] = _ms_since(started)
        return SpeechResult(
            segments=segments,
            language=detected,
            language_probability=round(probability, 4),
            language_source="hint" if language_given else "model" if self.engine.multilingual else "",
            audio_seconds=round(audio.seconds, 3),
            speech_seconds=round(speech_seconds, 3),
            model=self.model,
            timings_ms={k: round(v, 2) for k, v in timings.items()},
        )


def build_transcriber(
    settings: SpeechSettings, tracer: trace.Tracer | None = None
) -> Transcriber | RoutedTranscriber:
    """The configured model; with an English-only one and MODGATE_SPEECH_MULTILINGUAL_MODEL, both
    behind a language router (services/speech/routing.py)."""
    primary = build_one(settings, tracer)
    if primary.engine.multilingual or not settings.multilingual_model or settings.model_path is not None:
        return primary
    from services.speech.routing import RoutedTranscriber

    other = build_one(settings.model_copy(update={"model": settings.multilingual_model}), tracer)
    languages = frozenset(code.strip() for code in settings.languages.split(",") if code.strip())
    return RoutedTranscriber(primary, other, foreign_logprob=settings.foreign_logprob, candidates=languages)


def build_one(settings: SpeechSettings, tracer: trace.Tracer | None = None) -> Transcriber:
    """Resolve and verify weights, load the engine and the VAD, and warm the model up."""
    weights = resolve(settings)
    engine = build_engine(settings, weights)
    model = ModelInfo(
        name=weights.name, version=weights.version, engine=engine.name, variant=settings.variant
    )
    vad = SileroVad(VadParams(threshold=settings.vad_threshold))
    transcriber = Transcriber(engine, vad, model, tracer=tracer)
    # The first decode allocates buffers and picks kernels; pay for it here, not in a request
    # (once per parallel worker: each holds its own).
    noise = np.random.default_rng(0).normal(0.0, 0.01, SAMPLE_RATE).astype(np.float32)
    transcriber._decode([noise] * getattr(engine, "parallel", 1), "en")
    log.info(
        "speech model %s (%s, sha256 %s, %s) loaded with %s on %s, %d threads, %d chunks at once",
        weights.name,
        weights.source,
        weights.sha256,
        "pinned" if weights.pinned else "NOT pinned",
        engine.name,
        engine.device,
        settings.threads,
        getattr(engine, "parallel", 1),
    )
    return transcriber


def _to_original(layout: ChunkLayout, segment: ChunkSegment) -> list[SpeechSegment]:
    """The segment on the original timeline, one segment per sentence when words are known."""
    if not segment.words:
        start, end = layout.span(segment.start_s, segment.end_s)
        return [_segment(segment, segment.text, [(start, end)])]
    out = []
    for words in split_sentences(segment.words):
        text = sentence_text(words)
        if text:
            out.append(_segment(segment, text, [layout.span(w.start_s, w.end_s) for w in words]))
    return out


def _segment(segment: ChunkSegment, text: str, spans: list[tuple[float, float]]) -> SpeechSegment:
    return SpeechSegment(
        text=text,
        start_s=round(min(a for a, _ in spans), 3),
        end_s=round(max(b for _, b in spans), 3),
        avg_logprob=segment.avg_logprob,
        no_speech_prob=segment.no_speech_prob,
    )


def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0


@contextmanager
def _timed(timings: dict[str, float], key: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        timings[key] = _ms_since(started)
