"""openai-whisper (PyTorch): the reference implementation, fp32 on CPU.

Audio always arrives as a float32 numpy array: whisper.load_audio (which shells out to ffmpeg)
is never called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from services.speech.config import SpeechSettings
from services.speech.engines import ChunkSegment, ChunkTranscript
from services.speech.models import ResolvedWeights
from services.speech.sentences import Word

if TYPE_CHECKING:
    from whisper.model import Whisper


def resolve_device(requested: str) -> str:
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return requested


class OpenAIWhisperEngine:
    def __init__(self, settings: SpeechSettings, weights: ResolvedWeights) -> None:
        import torch
        import whisper
        from whisper.tokenizer import LANGUAGES

        from services.speech.ct2_torch import load_ct2_as_whisper

        self.device = resolve_device(settings.device)
        self.parallel = 1  # one PyTorch model, one decode at a time
        torch.set_num_threads(settings.threads)
        if weights.format == "openai-checkpoint":
            model = whisper.load_model(str(weights.path), device="cpu")
        else:
            model = load_ct2_as_whisper(weights.path)
        self._model = model.to(self.device).eval()
        self._fp16 = self.device == "cuda"
        self._beam_size = settings.beam_size
        self.name = "openai-whisper/" + ("fp16" if self._fp16 else "fp32")
        self.multilingual = bool(model.is_multilingual)
        self.languages = frozenset(LANGUAGES) if self.multilingual else frozenset({"en"})
        self._compile_word_alignment(settings.threads)

    @staticmethod
    def _compile_word_alignment(threads: int) -> None:
        """Word timestamps use numba-jitted DTW, compiled on first use: about 5-10 s on two cores.
        Pay that at load time, not in the first request that contains speech."""
        import numba
        import torch
        from whisper.timing import dtw

        numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
        dtw(torch.zeros((2, 4)))

    @property
    def model(self) -> Whisper:
        return self._model

    def transcribe(self, audio: np.ndarray, language: str | None) -> ChunkTranscript:
        import torch
        import whisper

        probability = 1.0
        if not self.multilingual:
            language = "en"
        elif language is None:
            language, probability = self._detect_language(audio)
        options: dict[str, object] = {"beam_size": self._beam_size} if self._beam_size > 1 else {}
        with torch.inference_mode():
            result = whisper.transcribe(
                self._model,
                audio,
                language=language,
                fp16=self._fp16,
                condition_on_previous_text=False,
                word_timestamps=True,
                verbose=None,
                **options,
            )
        segments = [
            ChunkSegment(
                text=str(segment["text"]).strip(),
                start_s=float(segment["start"]),
                end_s=float(segment["end"]),
                avg_logprob=float(segment["avg_logprob"]),
                no_speech_prob=float(segment["no_speech_prob"]),
                words=tuple(
                    Word(float(w["start"]), float(w["end"]), str(w["word"])) for w in segment.get("words", ())
                ),
            )
            for segment in result["segments"]
        ]
        return ChunkTranscript(segments=segments, language=language, language_probability=probability)

    def _detect_language(self, audio: np.ndarray) -> tuple[str, float]:
        import torch
        import whisper

        mel = whisper.log_mel_spectrogram(
            whisper.pad_or_trim(torch.from_numpy(audio)), self._model.dims.n_mels
        ).to(self.device)
        with torch.inference_mode():
            _, probs = self._model.detect_language(mel)
        language = max(probs, key=probs.get)
        return language, float(probs[language])
