"""Speech in other languages: an English-only model first, a multilingual one where needed.

Whisper tiny.en is fast and good at English but writes nonsense English for other speech. The
router (MODGATE_SPEECH_MULTILINGUAL_MODEL, default ``base``) sends a request

* with a non-English language hint (the request's locale) straight to the multilingual model;
* with an English hint to the English model;
* without a hint to the English model first: a confident English transcript (mean avg_logprob
  at least MODGATE_SPEECH_FOREIGN_LOGPROB, -0.9) is the answer, so English audio costs nothing
  extra. An unsure one (espeak-ng Spanish, French, German read by tiny.en: -1.1 to -1.5, or no
  words at all from speech; English: -0.3 to -0.4) is the cheap language check failing: the
  multilingual model detects the language among MODGATE_SPEECH_LANGUAGES on the first speech
  window and transcribes again in it.

The result says which language was heard and how it was chosen (``language_source``).
"""

from __future__ import annotations

import logging

from modgate.wire import SpeechResult
from services.speech.audio import PcmAudio
from services.speech.pipeline import Transcriber

log = logging.getLogger(__name__)


class RoutedTranscriber:
    def __init__(
        self,
        english: Transcriber,
        multilingual: Transcriber,
        *,
        foreign_logprob: float,
        candidates: frozenset[str],
    ) -> None:
        self.english = english
        self.multilingual = multilingual
        self.foreign_logprob = foreign_logprob
        self.candidates = candidates
        self.model = english.model

    def check_language(self, language: str | None) -> str | None:
        return self.multilingual.check_language(language)

    def transcribe(self, audio: PcmAudio, language: str | None = None) -> SpeechResult:
        code = self.check_language(language)
        if code is not None and code != "en":
            return _sourced(self.multilingual.transcribe(audio, code), "hint")
        first = self.english.transcribe(audio, "en")
        if code == "en" or not self._unsure(first):
            return _sourced(first, "hint" if code == "en" else "model")
        detected = self.multilingual.detect(audio, self.candidates)
        if detected is None or detected[0] == "en":
            return _sourced(first, "model")
        log.info(
            "English transcript unsure; heard %s (p=%.2f), transcribing with %s",
            *detected,
            self.multilingual.model.name,
        )
        result = self.multilingual.transcribe(audio, detected[0])
        result.language_probability = round(detected[1], 4)
        result.timings_ms["english_pass_ms"] = first.timings_ms.get("total_ms", 0.0)
        return _sourced(result, "detected")

    def _unsure(self, result: SpeechResult) -> bool:
        if result.speech_seconds >= 1.0 and not result.segments:
            return True
        if not result.segments:
            return False
        mean = sum(s.avg_logprob for s in result.segments) / len(result.segments)
        return mean < self.foreign_logprob


def _sourced(result: SpeechResult, source: str) -> SpeechResult:
    result.language_source = source
    return result
