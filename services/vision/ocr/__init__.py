"""On-screen text: the vision service reads the text burned into frames (OCR) and returns it as cues.

Text detection (PP-OCR DB) runs on every frame whose picture changed, at reduced size;
recognition (PP-OCR CTC) only on the boxes found, cropped from the frame as sent. The gateway
scores the cues with the text service (source ``on_screen_text``); the verdict's evidence for
them is VISUAL / ``ocr``.

Modules, one job each:
  models   the PP-OCR ONNX files shipped in the rapidocr wheel, sha256-pinned
  engine   ONNX Runtime sessions: detection -> boxes, recognition -> text + confidence
  reader   one request's frames: skip unchanged ones, cache by picture, spans and metrics
  cues     consecutive frames showing the same text -> one cue with start/end
"""
