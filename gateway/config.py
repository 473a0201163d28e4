"""Gateway configuration: the one place the gateway reads its environment.

Every field reads MODGATE_GATEWAY_<FIELD> (e.g. MODGATE_GATEWAY_MAX_DURATION_S=300); the
policy directory is the shared MODGATE_POLICY_DIR. Defaults run on a laptop.
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from gateway.media.limits import FrameStrategy, MediaLimits, MiB, SplitOptions, StreamsOverLimit
from gateway.security_config import SecuritySettings
from gateway.upstreams.config import OrchestrationSettings
from modgate.banks.config import BankSettings
from modgate.policy import DEFAULT_POLICY_DIR
from modgate.ports import GATEWAY_TARGET
from modgate.store.config import StoreSettings


class GatewayMode(StrEnum):
    """What forms the verdicts (MODGATE_GATEWAY_MODE); gateway/app.py wires each."""

    MODELS = "models"
    SPLIT_ONLY = "split_only"


class GatewayConfig(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MODGATE_GATEWAY_", extra="ignore", frozen=True)

    # --- serving ------------------------------------------------------------------------------
    listen: str = GATEWAY_TARGET
    # Requests served at once; more get RESOURCE_EXHAUSTED with a retry-after-ms trailer.
    max_concurrent_requests: int = Field(default=16, ge=1)
    retry_after_ms: int = Field(default=1000, ge=0)
    # Deadline applied when the caller sets none.
    default_deadline_s: float = Field(default=60.0, gt=0)
    # Seconds in-flight requests get to finish on SIGTERM.
    shutdown_grace_s: float = Field(default=10.0, ge=0)
    # models: fan out to the model services (the product). split_only: no model services, every
    # modality SKIPPED and the media facts reported (tests of the server itself); no /metrics.
    mode: GatewayMode = GatewayMode.MODELS

    # --- policy ---------------------------------------------------------------------------------
    policy_dir: Path = Field(
        default=DEFAULT_POLICY_DIR,
        validation_alias=AliasChoices("MODGATE_POLICY_DIR", "MODGATE_GATEWAY_POLICY_DIR"),
    )
    default_policy: str = "default"

    # --- media sources --------------------------------------------------------------------------
    max_unary_bytes: int = Field(default=32 * MiB, ge=1)
    max_stream_bytes: int = Field(default=256 * MiB, ge=1)
    # gRPC message size headroom over max_unary_bytes for the other request fields; a unary
    # request over max_unary_bytes + headroom is refused by gRPC itself (RESOURCE_EXHAUSTED).
    message_headroom_bytes: int = Field(default=1 * MiB, ge=64 * 1024)
    # file:// URIs must resolve under this directory; unset disables file:// URIs.
    media_root: Path | None = None
    # http(s) URIs: off by default; when on, only hosts in the allowlist are fetched.
    uri_fetch_enabled: bool = False
    # Comma-separated in the env ("cdn.example.com,media.example.org") or a JSON list.
    uri_allowlist: Annotated[list[str], NoDecode] = Field(default_factory=list)
    uri_fetch_timeout_s: float = Field(default=10.0, gt=0)
    # Where streamed uploads are spooled (default: the system temp dir).
    spool_dir: Path | None = None

    # --- media limits -------------------------------------------------------------------------
    max_duration_s: float = Field(default=600.0, gt=0)
    max_width: int = Field(default=4096, ge=16)
    max_height: int = Field(default=4096, ge=16)
    max_pixels: int = Field(default=4096 * 2160, ge=256)
    max_streams: int = Field(default=8, ge=1)
    # Every audio track is transcribed and every video stream sampled (the frame budget shared
    # between them) up to these, the default-disposition stream first; what happens to the rest
    # is streams_over_limit (review: reported, the verdict degraded and at least REVIEW; ignore:
    # reported, the verdict degraded; reject: RESOURCE_EXHAUSTED). See StreamsOverLimit.
    max_audio_tracks: int = Field(default=4, ge=1)
    max_video_streams: int = Field(default=2, ge=1)
    streams_over_limit: StreamsOverLimit = StreamsOverLimit.REVIEW
    max_subtitle_cues: int = Field(default=10_000, ge=1)
    max_subtitle_chars: int = Field(default=1_000_000, ge=1)
    decode_budget_s: float = Field(default=60.0, gt=0)

    # --- sampling -------------------------------------------------------------------------------
    frame_strategy: FrameStrategy = FrameStrategy.FPS
    frame_sample_fps: float = Field(default=1.0, gt=0)
    max_sample_fps: float = Field(default=10.0, gt=0)
    max_frames: int = Field(default=64, ge=1)  # the most a request may ask for
    # Frames for a request that does not say (ModerateOptions.max_frames = 0), capped by
    # max_frames. CLIP ViT-B-32 is the costliest model per item on a CPU (~30 ms a frame in
    # bf16, ~100 ms in fp32, per core): 32 frames keep a 60 s clip's visual lane shorter than
    # its speech lane on 2 cores, at one frame every ~1.9 s; clips up to 32 s keep 1 fps.
    default_max_frames: int = Field(default=32, ge=1)
    frame_max_side: int = Field(default=336, ge=16)
    # Frames go to vision this large when the request's policy reads on-screen text (policy
    # ocr.enabled): 24 px text at 720p is ~6 px at 336 and unreadable, ~18 px at 960. Vision
    # still runs CLIP at its own input size and text detection at MODGATE_VISION_OCR_DET_SIDE.
    # 0: frame_max_side for every policy.
    ocr_frame_max_side: int = Field(default=960, ge=0)
    scene_probe_fps: float = Field(default=4.0, gt=0)
    scene_threshold: float = Field(default=0.12, gt=0, le=1)
    # FPS: a keyframe within this fraction of the sampling interval stands in for the frame at
    # a sampling time (decoding it needs nothing before it); 0 = exact times. See SplitOptions.
    keyframe_snap: float = Field(default=0.5, ge=0, le=0.5)

    # --- split workers ----------------------------------------------------------------------
    # Worker processes for splitting (0: a thread in the gateway process, no crash isolation).
    split_workers: int = Field(default=2, ge=0)
    decode_threads: int = Field(default=2, ge=0)
    # Split the audio (+ subtitles, metadata) and the video as two parts and start speech on
    # the audio while the frames are still decoding (the models pipeline does).
    split_audio_first: bool = True

    # --- orchestration: upstream URLs, retries, breakers, admission queue, metrics ----------------
    # Its own MODGATE_GATEWAY_* fields (see gateway/upstreams/config.py).
    orchestration: OrchestrationSettings = Field(default_factory=OrchestrationSettings)

    # --- security: TLS, caller tokens, URI-fetch hardening (gateway/security_config.py) -----------
    security: SecuritySettings = Field(default_factory=SecuritySettings)

    # --- hash banks: MODGATE_BANK_DIR, MODGATE_BANK_RELOAD_INTERVAL_S (modgate/banks/config.py) ----
    # The exact MD5/SHA-256 lookup before splitting (gateway/orchestrator/exact.py); the banks
    # every policy names must exist there or the gateway does not start.
    banks: BankSettings = Field(default_factory=BankSettings)

    # --- verdict store: MODGATE_STORE_* (modgate/store/config.py) ---------------------------------
    # Every verdict committed before its reply; duplicate request_ids answered from it.
    store: StoreSettings = Field(default_factory=StoreSettings)

    @field_validator("uri_allowlist", mode="before")
    @classmethod
    def _comma_list(cls, value: object) -> object:
        if isinstance(value, str):
            hosts = json.loads(value) if value.lstrip().startswith("[") else value.split(",")
            return [str(host).strip().lower() for host in hosts if str(host).strip()]
        return value

    @property
    def max_message_bytes(self) -> int:
        return max(self.max_unary_bytes, 64 * 1024) + self.message_headroom_bytes

    def media_limits(self, max_bytes: int) -> MediaLimits:
        return MediaLimits(
            max_bytes=max_bytes,
            max_duration_s=self.max_duration_s,
            max_width=self.max_width,
            max_height=self.max_height,
            max_pixels=self.max_pixels,
            max_streams=self.max_streams,
            max_audio_tracks=self.max_audio_tracks,
            max_video_streams=self.max_video_streams,
            reject_extra_streams=self.streams_over_limit is StreamsOverLimit.REJECT,
            max_subtitle_cues=self.max_subtitle_cues,
            max_subtitle_chars=self.max_subtitle_chars,
            decode_budget_s=self.decode_budget_s,
        )

    def split_options(
        self,
        *,
        fps: float = 0.0,
        max_frames: int = 0,
        audio: bool = True,
        video: bool = True,
        ocr: bool = False,
    ) -> SplitOptions:
        """Sampling for one request: request values (0 = default) capped by the gateway's;
        `ocr`: the policy reads on-screen text (frames at ocr_frame_max_side)."""
        return SplitOptions(
            strategy=self.frame_strategy,
            frame_sample_fps=min(fps or self.frame_sample_fps, self.max_sample_fps),
            max_frames=min(max_frames or self.default_max_frames, self.max_frames),
            frame_max_side=max(self.frame_max_side, self.ocr_frame_max_side if ocr else 0),
            scene_probe_fps=self.scene_probe_fps,
            scene_threshold=self.scene_threshold,
            audio=audio,
            video=video,
            decode_threads=self.decode_threads,
            keyframe_snap=self.keyframe_snap,
        )
