"""Vision service: OpenCLIP zero-shot frame risk scores behind BentoML (``services.vision.service:Vision``).

Modules, one job each:
  config          VisionSettings, the only reader of MODGATE_VISION_* and the shared MODGATE_* keys
  models          where the CLIP weights come from (sha256-checked) and loading them
  import_model    ``python -m services.vision.import_model``: weights into the BentoML model store
  encoder         the CLIP towers: frames and prompts to unit-norm embeddings
  encoder_client  the front service's calls to the encoder process (retries, warm-up, batches)
  frames          request frames to model-resolution pixels and perceptual hashes
  dedup           near-duplicate frames by dHash
  prompts         each policy's prompt embeddings, cached by policy digest
  calibration     embeddings to calibrated per-category scores
  service         the two BentoML services and the HTTP contract (its docstring documents the request)
"""
