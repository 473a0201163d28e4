"""Typed internal payloads between the gateway and the model services (HTTP, not public).

Bulk data never travels as JSON numbers: audio is raw little-endian PCM and frames are JPEG
(or raw uint8) in multipart file parts; these models describe everything else. Each
service's response carries the model identity and whether its scores are calibrated, so the
gateway can mark a modality UNCALIBRATED and keep it out of decisions.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Variant = Literal["stable", "canary"]
TextSource = Literal[
    "title", "description", "hashtag", "caption", "subtitle", "transcript", "metadata", "on_screen_text"
]


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelInfo(_Wire):
    name: str  # e.g. "whisper-tiny.en", "ViT-B-32", "all-MiniLM-L6-v2"
    version: str  # weights sha256 prefix or release tag
    engine: str = ""  # e.g. "faster-whisper/int8", "open_clip", "sentence-transformers"
    variant: Variant = "stable"
    calibrated: bool = True


class PolicyRef(_Wire):
    """The policy a service scored against (name, version, content digest)."""

    name: str
    version: str
    digest: str


# --- speech -----------------------------------------------------------------------------


class SpeechSegment(_Wire):
    text: str
    start_s: float
    end_s: float
    avg_logprob: float
    no_speech_prob: float


class SpeechResult(_Wire):
    segments: list[SpeechSegment]
    language: str
    language_probability: float = 0.0
    audio_seconds: float
    speech_seconds: float  # after voice-activity detection
    model: ModelInfo
    # How the language was chosen: "hint" (the request's), "detected" (the multilingual model's
    # check after an unsure English pass), "model" (the one model's own) or "" (English-only model).
    language_source: str = ""
    timings_ms: dict[str, float] = Field(default_factory=dict)


# --- vision -----------------------------------------------------------------------------


class FrameScore(_Wire):
    index: int  # position in the request's frame list
    timestamp_ms: int
    scores: dict[str, float]  # category -> calibrated score in [0,1]
    best_prompts: dict[str, str]  # category -> the prompt that matched best
    duplicate_of: int | None = None  # near-duplicate of this earlier frame; scores copied


class VisionInfo(_Wire):
    """What a vision client needs before sending frames (POST /info on the vision service)."""

    model: ModelInfo
    input_size: int  # raw frames must be input_size x input_size x 3 uint8 RGB
    max_frames_per_request: int
    max_frame_bytes: int
    max_batch_size: int  # frames per model batch
    dedup_distance: int  # -1: near-duplicate skipping is off
    policies: list[PolicyRef]
    ocr_model: ModelInfo | None = None  # the on-screen text reader; None: OCR off here


class OcrCue(_Wire):
    """Text shown on screen: consecutive frames reading the same, merged (services/vision/ocr)."""

    text: str  # recognized lines in reading order, one per line
    start_ms: int  # the first frame showing it
    end_ms: int  # where the next frame looked at begins (or one frame gap after the last)
    confidence: float  # the recognizer's mean character probability for the reading kept
    frames: list[int]  # positions in the request's frame list of the frames showing it


class OcrResult(_Wire):
    """On-screen text read from a request's frames (absent when OCR is off)."""

    cues: list[OcrCue]
    frames_read: int  # frames text detection ran on
    frames_unchanged: int  # frames whose picture matched one already read: its text was reused
    frames_with_text: int  # frames (read or unchanged) showing text that passed the policy's filters
    boxes: int  # text boxes recognized
    model: ModelInfo
    timings_ms: dict[str, float] = Field(default_factory=dict)


class FrameHash(_Wire):
    """One request frame's PDQ hash: the video's timed hash sequence, frame by frame."""

    index: int  # position in the request's frame list
    timestamp_ms: int
    pdq: str  # 64 hex digits ("" when the frame could not be decoded)
    quality: int  # PDQ quality 0-100; frames under a bank's pdq_min_quality are not matched


class HashMatch(_Wire):
    """A request frame within a bank's PDQ distance of a banked entry (evidence, not a decision)."""

    bank: str
    entry_id: str
    category: str  # the policy's category for the bank
    distance: int  # Hamming distance, of 256 bits
    frame_index: int  # position in the request's frame list
    timestamp_ms: int  # the frame's time in the moderated media
    quality: int  # PDQ quality of the request frame
    signal_type: Literal["pdq"] = "pdq"
    entry_category: str = ""  # the category the entry was banked under
    content_id: str = ""  # the banked content the entry came from
    content_ms: int | None = None  # where the banked frame sits in that content


class BankRef(_Wire):
    """A bank as consulted: which snapshot (generation) and how big."""

    name: str
    generation: int
    entries: int


class HashResult(_Wire):
    frames: list[FrameHash]  # every request frame, in request order
    matches: list[HashMatch]  # by frame, then distance; at most a few per frame and bank
    banks: list[BankRef]  # the policy's banks that were consulted
    notes: list[str] = Field(default_factory=list)  # e.g. a policy bank missing from the bank directory
    timings_ms: dict[str, float] = Field(default_factory=dict)


class VisionResult(_Wire):
    frames: list[FrameScore]
    duplicates_skipped: int
    batch_sizes: list[int]  # sizes of the model batches this request's frames rode in
    model: ModelInfo
    policy: PolicyRef
    timings_ms: dict[str, float] = Field(default_factory=dict)
    ocr: OcrResult | None = None  # on-screen text (None: OCR off for this service or policy)
    # PDQ hashes of the frames and their matches in the policy's hash banks (None: the policy
    # names no bank). Independent of the model: present when it runs uncalibrated too.
    hashes: HashResult | None = None


# --- text -------------------------------------------------------------------------------


class TextItem(_Wire):
    id: str  # caller-chosen, echoed back
    text: str
    source: TextSource
    start_ms: int | None = None
    end_ms: int | None = None


class TextRequest(_Wire):
    items: list[TextItem]
    policy: str = "default"  # policy name; the service answers with the version it holds
    # The version the caller holds: a service holding another re-reads its policy directory
    # first (the response's PolicyRef says what was used).
    policy_version: str | None = None
    # The variant the caller meant to reach: a replica serving the other one answers 409.
    variant: Variant | None = None


class TextMatch(_Wire):
    category: str
    score: float
    signal: Literal["semantic", "classifier", "lexicon", "blocklist", "codeword"]
    evidence: str  # matched words, blocklist term, or nearest exemplar
    span_start: int | None = None  # character span in the (original) item text
    span_end: int | None = None


class TextItemResult(_Wire):
    id: str
    scores: dict[str, float]  # category -> calibrated score in [0,1]
    matches: list[TextMatch]  # evidence behind the scores, strongest first
    language: str = "en"
    notes: list[str] = Field(default_factory=list)  # e.g. "non-English text: low confidence"


class TextResult(_Wire):
    items: list[TextItemResult]
    model: ModelInfo
    policy: PolicyRef
    timings_ms: dict[str, float] = Field(default_factory=dict)
