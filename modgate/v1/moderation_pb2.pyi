from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Modality(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MODALITY_UNSPECIFIED: _ClassVar[Modality]
    MODALITY_AUDIO: _ClassVar[Modality]
    MODALITY_VISUAL: _ClassVar[Modality]
    MODALITY_TEXT: _ClassVar[Modality]

class Decision(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DECISION_UNSPECIFIED: _ClassVar[Decision]
    DECISION_ALLOW: _ClassVar[Decision]
    DECISION_REVIEW: _ClassVar[Decision]
    DECISION_BLOCK: _ClassVar[Decision]

class Source(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SOURCE_UNSPECIFIED: _ClassVar[Source]
    SOURCE_TRANSCRIPT: _ClassVar[Source]
    SOURCE_FRAME: _ClassVar[Source]
    SOURCE_SUBTITLE: _ClassVar[Source]
    SOURCE_TITLE: _ClassVar[Source]
    SOURCE_DESCRIPTION: _ClassVar[Source]
    SOURCE_HASHTAG: _ClassVar[Source]
    SOURCE_CAPTION: _ClassVar[Source]
    SOURCE_METADATA: _ClassVar[Source]
    SOURCE_ON_SCREEN_TEXT: _ClassVar[Source]

class ModalityState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MODALITY_STATE_UNSPECIFIED: _ClassVar[ModalityState]
    MODALITY_STATE_OK: _ClassVar[ModalityState]
    MODALITY_STATE_SKIPPED: _ClassVar[ModalityState]
    MODALITY_STATE_FAILED: _ClassVar[ModalityState]
    MODALITY_STATE_TIMED_OUT: _ClassVar[ModalityState]
    MODALITY_STATE_UNCALIBRATED: _ClassVar[ModalityState]

class StreamKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STREAM_KIND_UNSPECIFIED: _ClassVar[StreamKind]
    STREAM_KIND_AUDIO: _ClassVar[StreamKind]
    STREAM_KIND_VIDEO: _ClassVar[StreamKind]
    STREAM_KIND_SUBTITLE: _ClassVar[StreamKind]
    STREAM_KIND_ATTACHMENT: _ClassVar[StreamKind]
    STREAM_KIND_DATA: _ClassVar[StreamKind]
MODALITY_UNSPECIFIED: Modality
MODALITY_AUDIO: Modality
MODALITY_VISUAL: Modality
MODALITY_TEXT: Modality
DECISION_UNSPECIFIED: Decision
DECISION_ALLOW: Decision
DECISION_REVIEW: Decision
DECISION_BLOCK: Decision
SOURCE_UNSPECIFIED: Source
SOURCE_TRANSCRIPT: Source
SOURCE_FRAME: Source
SOURCE_SUBTITLE: Source
SOURCE_TITLE: Source
SOURCE_DESCRIPTION: Source
SOURCE_HASHTAG: Source
SOURCE_CAPTION: Source
SOURCE_METADATA: Source
SOURCE_ON_SCREEN_TEXT: Source
MODALITY_STATE_UNSPECIFIED: ModalityState
MODALITY_STATE_OK: ModalityState
MODALITY_STATE_SKIPPED: ModalityState
MODALITY_STATE_FAILED: ModalityState
MODALITY_STATE_TIMED_OUT: ModalityState
MODALITY_STATE_UNCALIBRATED: ModalityState
STREAM_KIND_UNSPECIFIED: StreamKind
STREAM_KIND_AUDIO: StreamKind
STREAM_KIND_VIDEO: StreamKind
STREAM_KIND_SUBTITLE: StreamKind
STREAM_KIND_ATTACHMENT: StreamKind
STREAM_KIND_DATA: StreamKind

class ModerateRequest(_message.Message):
    __slots__ = ("request_id", "content_id", "media", "media_uri", "title", "description", "hashtags", "captions", "locale", "policy", "options")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CONTENT_ID_FIELD_NUMBER: _ClassVar[int]
    MEDIA_FIELD_NUMBER: _ClassVar[int]
    MEDIA_URI_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    HASHTAGS_FIELD_NUMBER: _ClassVar[int]
    CAPTIONS_FIELD_NUMBER: _ClassVar[int]
    LOCALE_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    content_id: str
    media: bytes
    media_uri: str
    title: str
    description: str
    hashtags: _containers.RepeatedScalarFieldContainer[str]
    captions: _containers.RepeatedCompositeFieldContainer[CaptionCue]
    locale: str
    policy: str
    options: ModerateOptions
    def __init__(self, request_id: _Optional[str] = ..., content_id: _Optional[str] = ..., media: _Optional[bytes] = ..., media_uri: _Optional[str] = ..., title: _Optional[str] = ..., description: _Optional[str] = ..., hashtags: _Optional[_Iterable[str]] = ..., captions: _Optional[_Iterable[_Union[CaptionCue, _Mapping]]] = ..., locale: _Optional[str] = ..., policy: _Optional[str] = ..., options: _Optional[_Union[ModerateOptions, _Mapping]] = ...) -> None: ...

class CaptionCue(_message.Message):
    __slots__ = ("text", "start_ms", "end_ms")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    START_MS_FIELD_NUMBER: _ClassVar[int]
    END_MS_FIELD_NUMBER: _ClassVar[int]
    text: str
    start_ms: int
    end_ms: int
    def __init__(self, text: _Optional[str] = ..., start_ms: _Optional[int] = ..., end_ms: _Optional[int] = ...) -> None: ...

class ModerateOptions(_message.Message):
    __slots__ = ("frame_sample_fps", "max_frames", "include_transcript", "skip_modalities", "variant")
    FRAME_SAMPLE_FPS_FIELD_NUMBER: _ClassVar[int]
    MAX_FRAMES_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_TRANSCRIPT_FIELD_NUMBER: _ClassVar[int]
    SKIP_MODALITIES_FIELD_NUMBER: _ClassVar[int]
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    frame_sample_fps: float
    max_frames: int
    include_transcript: bool
    skip_modalities: _containers.RepeatedScalarFieldContainer[Modality]
    variant: str
    def __init__(self, frame_sample_fps: _Optional[float] = ..., max_frames: _Optional[int] = ..., include_transcript: _Optional[bool] = ..., skip_modalities: _Optional[_Iterable[_Union[Modality, str]]] = ..., variant: _Optional[str] = ...) -> None: ...

class ModerateChunk(_message.Message):
    __slots__ = ("header", "data")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    header: ModerateRequest
    data: bytes
    def __init__(self, header: _Optional[_Union[ModerateRequest, _Mapping]] = ..., data: _Optional[bytes] = ...) -> None: ...

class ModelRef(_message.Message):
    __slots__ = ("name", "version", "variant")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    variant: str
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ..., variant: _Optional[str] = ...) -> None: ...

class CategoryScore(_message.Message):
    __slots__ = ("category", "score", "decision", "by_modality")
    class ByModalityEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    DECISION_FIELD_NUMBER: _ClassVar[int]
    BY_MODALITY_FIELD_NUMBER: _ClassVar[int]
    category: str
    score: float
    decision: Decision
    by_modality: _containers.ScalarMap[str, float]
    def __init__(self, category: _Optional[str] = ..., score: _Optional[float] = ..., decision: _Optional[_Union[Decision, str]] = ..., by_modality: _Optional[_Mapping[str, float]] = ...) -> None: ...

class Evidence(_message.Message):
    __slots__ = ("category", "score", "modality", "source", "start_ms", "end_ms", "snippet", "frame_index", "model", "span_start", "span_end", "signal", "stream_index", "bank_match")
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    MODALITY_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    START_MS_FIELD_NUMBER: _ClassVar[int]
    END_MS_FIELD_NUMBER: _ClassVar[int]
    SNIPPET_FIELD_NUMBER: _ClassVar[int]
    FRAME_INDEX_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    SPAN_START_FIELD_NUMBER: _ClassVar[int]
    SPAN_END_FIELD_NUMBER: _ClassVar[int]
    SIGNAL_FIELD_NUMBER: _ClassVar[int]
    STREAM_INDEX_FIELD_NUMBER: _ClassVar[int]
    BANK_MATCH_FIELD_NUMBER: _ClassVar[int]
    category: str
    score: float
    modality: Modality
    source: Source
    start_ms: int
    end_ms: int
    snippet: str
    frame_index: int
    model: ModelRef
    span_start: int
    span_end: int
    signal: str
    stream_index: int
    bank_match: BankMatch
    def __init__(self, category: _Optional[str] = ..., score: _Optional[float] = ..., modality: _Optional[_Union[Modality, str]] = ..., source: _Optional[_Union[Source, str]] = ..., start_ms: _Optional[int] = ..., end_ms: _Optional[int] = ..., snippet: _Optional[str] = ..., frame_index: _Optional[int] = ..., model: _Optional[_Union[ModelRef, _Mapping]] = ..., span_start: _Optional[int] = ..., span_end: _Optional[int] = ..., signal: _Optional[str] = ..., stream_index: _Optional[int] = ..., bank_match: _Optional[_Union[BankMatch, _Mapping]] = ...) -> None: ...

class BankMatch(_message.Message):
    __slots__ = ("bank", "entry_id", "signal_type", "distance", "content_id", "content_ms", "action")
    BANK_FIELD_NUMBER: _ClassVar[int]
    ENTRY_ID_FIELD_NUMBER: _ClassVar[int]
    SIGNAL_TYPE_FIELD_NUMBER: _ClassVar[int]
    DISTANCE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_ID_FIELD_NUMBER: _ClassVar[int]
    CONTENT_MS_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    bank: str
    entry_id: str
    signal_type: str
    distance: int
    content_id: str
    content_ms: int
    action: str
    def __init__(self, bank: _Optional[str] = ..., entry_id: _Optional[str] = ..., signal_type: _Optional[str] = ..., distance: _Optional[int] = ..., content_id: _Optional[str] = ..., content_ms: _Optional[int] = ..., action: _Optional[str] = ...) -> None: ...

class TranscriptSegment(_message.Message):
    __slots__ = ("text", "start_ms", "end_ms", "avg_logprob", "no_speech_prob", "stream_index", "language")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    START_MS_FIELD_NUMBER: _ClassVar[int]
    END_MS_FIELD_NUMBER: _ClassVar[int]
    AVG_LOGPROB_FIELD_NUMBER: _ClassVar[int]
    NO_SPEECH_PROB_FIELD_NUMBER: _ClassVar[int]
    STREAM_INDEX_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    text: str
    start_ms: int
    end_ms: int
    avg_logprob: float
    no_speech_prob: float
    stream_index: int
    language: str
    def __init__(self, text: _Optional[str] = ..., start_ms: _Optional[int] = ..., end_ms: _Optional[int] = ..., avg_logprob: _Optional[float] = ..., no_speech_prob: _Optional[float] = ..., stream_index: _Optional[int] = ..., language: _Optional[str] = ...) -> None: ...

class ModalityStatus(_message.Message):
    __slots__ = ("modality", "state", "reason", "latency_ms", "model", "items", "frames_read", "frames_with_text", "languages")
    MODALITY_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    FRAMES_READ_FIELD_NUMBER: _ClassVar[int]
    FRAMES_WITH_TEXT_FIELD_NUMBER: _ClassVar[int]
    LANGUAGES_FIELD_NUMBER: _ClassVar[int]
    modality: Modality
    state: ModalityState
    reason: str
    latency_ms: int
    model: ModelRef
    items: int
    frames_read: int
    frames_with_text: int
    languages: str
    def __init__(self, modality: _Optional[_Union[Modality, str]] = ..., state: _Optional[_Union[ModalityState, str]] = ..., reason: _Optional[str] = ..., latency_ms: _Optional[int] = ..., model: _Optional[_Union[ModelRef, _Mapping]] = ..., items: _Optional[int] = ..., frames_read: _Optional[int] = ..., frames_with_text: _Optional[int] = ..., languages: _Optional[str] = ...) -> None: ...

class OnScreenText(_message.Message):
    __slots__ = ("text", "start_ms", "end_ms", "confidence", "stream_index")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    START_MS_FIELD_NUMBER: _ClassVar[int]
    END_MS_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    STREAM_INDEX_FIELD_NUMBER: _ClassVar[int]
    text: str
    start_ms: int
    end_ms: int
    confidence: float
    stream_index: int
    def __init__(self, text: _Optional[str] = ..., start_ms: _Optional[int] = ..., end_ms: _Optional[int] = ..., confidence: _Optional[float] = ..., stream_index: _Optional[int] = ...) -> None: ...

class StageTiming(_message.Message):
    __slots__ = ("stage", "duration_ms")
    STAGE_FIELD_NUMBER: _ClassVar[int]
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    stage: str
    duration_ms: int
    def __init__(self, stage: _Optional[str] = ..., duration_ms: _Optional[int] = ...) -> None: ...

class Verdict(_message.Message):
    __slots__ = ("request_id", "content_id", "decision", "risk", "categories", "evidence", "transcript", "modalities", "policy_name", "policy_version", "trace_id", "timings", "degraded", "reasons", "media", "on_screen_text", "verdict_id", "from_store", "decided_at_ms")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CONTENT_ID_FIELD_NUMBER: _ClassVar[int]
    DECISION_FIELD_NUMBER: _ClassVar[int]
    RISK_FIELD_NUMBER: _ClassVar[int]
    CATEGORIES_FIELD_NUMBER: _ClassVar[int]
    EVIDENCE_FIELD_NUMBER: _ClassVar[int]
    TRANSCRIPT_FIELD_NUMBER: _ClassVar[int]
    MODALITIES_FIELD_NUMBER: _ClassVar[int]
    POLICY_NAME_FIELD_NUMBER: _ClassVar[int]
    POLICY_VERSION_FIELD_NUMBER: _ClassVar[int]
    TRACE_ID_FIELD_NUMBER: _ClassVar[int]
    TIMINGS_FIELD_NUMBER: _ClassVar[int]
    DEGRADED_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    MEDIA_FIELD_NUMBER: _ClassVar[int]
    ON_SCREEN_TEXT_FIELD_NUMBER: _ClassVar[int]
    VERDICT_ID_FIELD_NUMBER: _ClassVar[int]
    FROM_STORE_FIELD_NUMBER: _ClassVar[int]
    DECIDED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    content_id: str
    decision: Decision
    risk: float
    categories: _containers.RepeatedCompositeFieldContainer[CategoryScore]
    evidence: _containers.RepeatedCompositeFieldContainer[Evidence]
    transcript: _containers.RepeatedCompositeFieldContainer[TranscriptSegment]
    modalities: _containers.RepeatedCompositeFieldContainer[ModalityStatus]
    policy_name: str
    policy_version: str
    trace_id: str
    timings: _containers.RepeatedCompositeFieldContainer[StageTiming]
    degraded: bool
    reasons: _containers.RepeatedScalarFieldContainer[str]
    media: MediaInfo
    on_screen_text: _containers.RepeatedCompositeFieldContainer[OnScreenText]
    verdict_id: str
    from_store: bool
    decided_at_ms: int
    def __init__(self, request_id: _Optional[str] = ..., content_id: _Optional[str] = ..., decision: _Optional[_Union[Decision, str]] = ..., risk: _Optional[float] = ..., categories: _Optional[_Iterable[_Union[CategoryScore, _Mapping]]] = ..., evidence: _Optional[_Iterable[_Union[Evidence, _Mapping]]] = ..., transcript: _Optional[_Iterable[_Union[TranscriptSegment, _Mapping]]] = ..., modalities: _Optional[_Iterable[_Union[ModalityStatus, _Mapping]]] = ..., policy_name: _Optional[str] = ..., policy_version: _Optional[str] = ..., trace_id: _Optional[str] = ..., timings: _Optional[_Iterable[_Union[StageTiming, _Mapping]]] = ..., degraded: _Optional[bool] = ..., reasons: _Optional[_Iterable[str]] = ..., media: _Optional[_Union[MediaInfo, _Mapping]] = ..., on_screen_text: _Optional[_Iterable[_Union[OnScreenText, _Mapping]]] = ..., verdict_id: _Optional[str] = ..., from_store: _Optional[bool] = ..., decided_at_ms: _Optional[int] = ...) -> None: ...

class MediaInfo(_message.Message):
    __slots__ = ("duration_ms", "container", "width", "height", "has_audio", "has_video", "subtitle_streams", "frames_sampled", "undecodable_streams", "streams")
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    CONTAINER_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    HAS_AUDIO_FIELD_NUMBER: _ClassVar[int]
    HAS_VIDEO_FIELD_NUMBER: _ClassVar[int]
    SUBTITLE_STREAMS_FIELD_NUMBER: _ClassVar[int]
    FRAMES_SAMPLED_FIELD_NUMBER: _ClassVar[int]
    UNDECODABLE_STREAMS_FIELD_NUMBER: _ClassVar[int]
    STREAMS_FIELD_NUMBER: _ClassVar[int]
    duration_ms: int
    container: str
    width: int
    height: int
    has_audio: bool
    has_video: bool
    subtitle_streams: int
    frames_sampled: int
    undecodable_streams: _containers.RepeatedScalarFieldContainer[str]
    streams: _containers.RepeatedCompositeFieldContainer[MediaStream]
    def __init__(self, duration_ms: _Optional[int] = ..., container: _Optional[str] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., has_audio: _Optional[bool] = ..., has_video: _Optional[bool] = ..., subtitle_streams: _Optional[int] = ..., frames_sampled: _Optional[int] = ..., undecodable_streams: _Optional[_Iterable[str]] = ..., streams: _Optional[_Iterable[_Union[MediaStream, _Mapping]]] = ...) -> None: ...

class MediaStream(_message.Message):
    __slots__ = ("index", "kind", "codec", "language", "is_default", "moderated", "reason", "over_limit", "width", "height", "frames_sampled")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    CODEC_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    IS_DEFAULT_FIELD_NUMBER: _ClassVar[int]
    MODERATED_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    OVER_LIMIT_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    FRAMES_SAMPLED_FIELD_NUMBER: _ClassVar[int]
    index: int
    kind: StreamKind
    codec: str
    language: str
    is_default: bool
    moderated: bool
    reason: str
    over_limit: bool
    width: int
    height: int
    frames_sampled: int
    def __init__(self, index: _Optional[int] = ..., kind: _Optional[_Union[StreamKind, str]] = ..., codec: _Optional[str] = ..., language: _Optional[str] = ..., is_default: _Optional[bool] = ..., moderated: _Optional[bool] = ..., reason: _Optional[str] = ..., over_limit: _Optional[bool] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., frames_sampled: _Optional[int] = ...) -> None: ...
