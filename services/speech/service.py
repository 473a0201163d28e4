"""The speech service: Whisper transcription over HTTP (BentoML).

Run it alone from the repository root::

    bentoml serve services.speech.service:Speech            # 127.0.0.1:3001 by default
    bentoml serve services.speech.service:Speech --port 3001 --host 0.0.0.0

Health: ``GET /livez`` and ``GET /readyz`` (200 once the model is loaded), ``GET /metrics``.

Request (what the gateway sends)
--------------------------------
``POST /transcribe`` with ``Content-Type: multipart/form-data`` and these parts:

==============  ========  ===================================================================
part            required  content
==============  ========  ===================================================================
``audio``       yes       a *file* part (``filename=`` set, any content type, e.g.
                          ``application/octet-stream``): raw little-endian 16 kHz mono PCM
                          samples, no WAV header
``sample_rate`` yes       form field, must be ``16000``
``dtype``       yes       form field, ``int16`` or ``float32`` (float32 samples in [-1, 1])
``language``    no        form field, ISO 639-1 hint (``en``, ``de``...); omit, ``auto`` or
                          empty to detect (tiny.en is English-only and accepts only ``en``)
``variant``     no        form field, ``stable`` or ``canary``: the variant the caller meant to
                          reach; a replica serving the other one answers 409 instead of
                          silently mixing canary scores into stable traffic
==============  ========  ===================================================================

For example, with httpx::

    httpx.post(f"{base}/transcribe",
               files={"audio": ("audio.pcm", pcm_bytes, "application/octet-stream")},
               data={"sample_rate": "16000", "dtype": "int16", "language": "en"})

or ``curl -F audio=@clip.pcm -F sample_rate=16000 -F dtype=int16 http://127.0.0.1:3001/transcribe``.

Response
--------
200: JSON :class:`modgate.wire.SpeechResult` (``SpeechResult.model_validate_json(body)``):
segments (text, start_s, end_s on the request's timeline, avg_logprob, no_speech_prob), language,
language_probability, audio_seconds, speech_seconds (what voice-activity detection kept; 0 for
silence, tone or music, in which case the model never ran), model (name, version = weights
sha256 prefix, engine, variant) and timings_ms (decode_ms, queue_ms, vad_ms, asr_ms, total_ms).

Errors: JSON ``{"error": "<what was wrong and what to send instead>", "field": "<part>"}`` with

* 400: empty audio, byte length not a multiple of the sample size; also BentoML's own 400
  ``{"error": "...validation error...", "detail": [...]}`` for a missing or mistyped part
* 409: ``variant`` does not match this replica's MODGATE_VARIANT
* 413: audio longer than MODGATE_SPEECH_MAX_AUDIO_SECONDS (default 600 s)
* 422: sample_rate other than 16000, unknown dtype, NaN/Inf or out-of-range float samples,
  unsupported language
* 429: more than MODGATE_SPEECH_MAX_CONCURRENCY requests in flight (BentoML; retry later)

Concurrency: one worker process holds one model; requests queue for it (``timings_ms.queue_ms``)
rather than run side by side, because two decodes sharing two cores both finish late. The
model uses MODGATE_SPEECH_THREADS threads (default: the cores this process may use), spread over
the request's <=30 s chunks, MODGATE_SPEECH_CHUNK_WORKERS decoded at once (default: one per thread).
"""

from __future__ import annotations

import time
from pathlib import Path

import bentoml
from starlette.responses import JSONResponse

from modgate import telemetry
from modgate.wire import SpeechResult
from services.common import RequestError, check_variant, error_response
from services.speech.audio import open_pcm
from services.speech.config import SpeechSettings
from services.speech.pipeline import build_transcriber

SETTINGS = SpeechSettings()
telemetry.setup_telemetry("speech", variant=SETTINGS.variant, log_level="INFO")


@bentoml.service(
    name="speech",
    workers=1,
    threads=SETTINGS.max_concurrency,
    traffic={
        "timeout": SETTINGS.request_timeout_s,
        "max_concurrency": SETTINGS.max_concurrency,
        "concurrency": 1,
    },
    http={"host": SETTINGS.host, "port": SETTINGS.port},
    **telemetry.bentoml_tracing_config(),
)
class Speech:
    def __init__(self) -> None:
        self.settings = SETTINGS
        self.transcriber = build_transcriber(self.settings)

    # output_spec given explicitly: the annotation also admits the JSONResponse of a 4xx answer.
    @bentoml.api(route="/transcribe", output_spec=SpeechResult)
    def transcribe(
        self,
        audio: Path,
        sample_rate: int,
        dtype: str,
        language: str | None = None,
        variant: str | None = None,
    ) -> SpeechResult | JSONResponse:
        """Transcribe raw 16 kHz mono PCM (see the module docstring for the request shape)."""
        started = time.perf_counter()
        try:
            check_variant(variant, self.settings.variant)
            pcm = open_pcm(
                audio, sample_rate=sample_rate, dtype=dtype, max_seconds=self.settings.max_audio_seconds
            )
            decode_ms = (time.perf_counter() - started) * 1000.0
            result = self.transcriber.transcribe(pcm, language)
        except RequestError as exc:  # AudioError included
            return error_response(exc)
        result.timings_ms["decode_ms"] = round(decode_ms, 2)
        result.timings_ms["total_ms"] = round((time.perf_counter() - started) * 1000.0, 2)
        return result
