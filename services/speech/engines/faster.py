"""faster-whisper (CTranslate2): the default engine, int8 on CPU."""

from __future__ import annotations

import logging

import numpy as np

from services.speech.config import SpeechSettings
from services.speech.engines import ChunkSegment, ChunkTranscript, EngineError
from services.speech.models import ResolvedWeights
from services.speech.sentences import Word


def resolve_device(requested: str) -> str:
    if requested != "auto":
        return requested
    import ctranslate2

    return "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"


class FasterWhisperEngine:
    def __init__(self, settings: SpeechSettings, weights: ResolvedWeights) -> None:
        from faster_whisper import WhisperModel
        from faster_whisper.tokenizer import _LANGUAGE_CODES

        if weights.format != "ctranslate2":
            raise EngineError(
                f"faster-whisper needs a CTranslate2 model directory, but {weights.path} is an "
                "openai-whisper checkpoint: set MODGATE_SPEECH_ENGINE=openai-whisper, or convert it "
                "with ctranslate2's converter and point MODGATE_SPEECH_MODEL_PATH at the result"
            )
        # It logs every call at INFO ("Processing audio with duration ..."); the service logs enough.
        logging.getLogger("faster_whisper").setLevel(logging.WARNING)
        self.device = resolve_device(settings.device)
        # One request at a time holds the model (the service serialises requests); its chunks
        # are decoded in parallel, `parallel` at once, each on its share of the threads.
        workers, chunk_threads = settings.chunk_parallelism() if self.device == "cpu" else (1, 1)
        self.parallel = workers
        self._model = WhisperModel(
            str(weights.path),
            device=self.device,
            compute_type=settings.compute_type,
            cpu_threads=chunk_threads if self.device == "cpu" else settings.threads,
            num_workers=workers,
            local_files_only=True,
        )
        self._beam_size = settings.beam_size
        self.name = f"faster-whisper/{settings.compute_type}"
        self.multilingual = bool(self._model.model.is_multilingual)
        self.languages = frozenset(_LANGUAGE_CODES) if self.multilingual else frozenset({"en"})

    def transcribe(self, audio: np.ndarray, language: str | None) -> ChunkTranscript:
        segments, info = self._model.transcribe(
            audio,
            language=language if self.multilingual else "en",
            beam_size=self._beam_size,
            best_of=self._beam_size,
            vad_filter=False,  # the pipeline already kept only speech
            # Chunks are independent; conditioning on earlier text feeds hallucination loops.
            condition_on_previous_text=False,
            word_timestamps=True,
        )
        out = [
            ChunkSegment(
                text=segment.text.strip(),
                start_s=float(segment.start),
                end_s=float(segment.end),
                avg_logprob=float(segment.avg_logprob),
                no_speech_prob=float(segment.no_speech_prob),
                words=tuple(Word(float(w.start), float(w.end), w.word) for w in segment.words or ()),
            )
            for segment in segments  # a generator: decoding happens here
        ]
        return ChunkTranscript(
            segments=out, language=info.language, language_probability=float(info.language_probability)
        )

    def detect(self, audio: np.ndarray, candidates: frozenset[str]) -> tuple[str, float] | None:
        """The most probable of `candidates` for this audio (one Whisper window), or None."""
        if not self.multilingual:
            return None
        _, _, ranked = self._model.detect_language(audio)
        allowed = [(code, float(p)) for code, p in ranked if code in candidates]
        return max(allowed, key=lambda kv: kv[1]) if allowed else None
