"""Speech service: Whisper transcription behind BentoML (``services.speech.service:Speech``).

Modules, one job each:
  config     SpeechSettings, the only reader of MODGATE_SPEECH_* / MODGATE_DEVICE / MODGATE_VARIANT
  models     where the weights come from, sha256 pins
  ct2_torch  CTranslate2 Whisper weights -> openai-whisper PyTorch model
  engines    faster-whisper (default) and openai-whisper behind one interface
  audio      raw PCM validation and windowed float32 decoding
  vad        streaming Silero VAD, speech regions, packing into Whisper windows
  pipeline   one request: audio -> VAD -> engine -> modgate.wire.SpeechResult (with a trace span)
  service    the BentoML service and the HTTP contract (its docstring documents the request)
"""
