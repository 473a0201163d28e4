"""Orchestration settings: upstream URLs (stable/canary/shadow), retries, breakers, admission.

Read from `MODGATE_GATEWAY_*` env vars; the upstream URLs come from the YAML file named by
`MODGATE_GATEWAY_UPSTREAMS_FILE` (the Helm chart renders it), defaulting to the three local
services. Embedded in the gateway's one settings module (gateway/config.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from gateway.cost import CostRates
from modgate.ports import METRICS_PORT, SERVICE_URLS

ServiceName = Literal["speech", "vision", "text"]
SERVICES: tuple[ServiceName, ...] = ("speech", "vision", "text")
DEFAULT_URLS: dict[str, str] = dict(SERVICE_URLS)


class UpstreamsError(ValueError):
    """An upstreams file that cannot be used; the message names the file and the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Endpoint(_Strict):
    url: str

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"{value!r} must start with http:// or https://")
        return value.rstrip("/")


class CanaryEndpoint(Endpoint):
    # Share of request ids (0-100) routed to the canary, or mirrored to it in shadow mode.
    weight: int = Field(default=0, ge=0, le=100)
    # Shadow: the canary gets a copy of the request; its result is recorded, never used.
    shadow: bool = False


class ServiceUpstreams(_Strict):
    stable: Endpoint
    canary: CanaryEndpoint | None = None


def _default(service: str) -> ServiceUpstreams:
    return ServiceUpstreams(stable=Endpoint(url=DEFAULT_URLS[service]))


class Upstreams(_Strict):
    speech: ServiceUpstreams = Field(default_factory=lambda: _default("speech"))
    vision: ServiceUpstreams = Field(default_factory=lambda: _default("vision"))
    text: ServiceUpstreams = Field(default_factory=lambda: _default("text"))

    def for_service(self, service: str) -> ServiceUpstreams:
        return getattr(self, service)


def parse_upstreams(data: object, *, source: str = "<memory>") -> Upstreams:
    if data is None:
        data = {}
    try:
        return Upstreams.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}" for err in exc.errors()
        )
        raise UpstreamsError(f"invalid upstreams file {source}: {problems}") from None


def load_upstreams(path: Path | str | None) -> Upstreams:
    """The upstreams file, or the three local stable services when no file is configured."""
    if path is None or str(path) == "":
        return Upstreams()
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UpstreamsError(
            f"upstreams file {path} does not exist (set MODGATE_GATEWAY_UPSTREAMS_FILE or unset it)"
        ) from None
    except yaml.YAMLError as exc:
        raise UpstreamsError(f"upstreams file {path} is not valid YAML: {exc}") from None
    return parse_upstreams(data, source=str(path))


class OrchestrationSettings(BaseSettings):
    """Fan-out, resilience and admission knobs (env: MODGATE_GATEWAY_<FIELD>).

    Nested in GatewayConfig as `orchestration`; the request deadline default
    (default_deadline_s) and the retry-after hint (retry_after_ms) are GatewayConfig fields.
    """

    model_config = SettingsConfigDict(env_prefix="MODGATE_GATEWAY_", extra="ignore", frozen=True)

    upstreams_file: Path | None = None
    metrics_port: int = Field(default=METRICS_PORT, ge=0, le=65535)  # 0 disables the endpoint
    # Default: the host of MODGATE_GATEWAY_LISTEN (127.0.0.1 locally, 0.0.0.0 in a pod).
    metrics_host: str | None = None

    # Admission: requests running at once (default: max_concurrent_requests), and how many
    # more may wait for a slot, each at most queue_timeout_ms (0: refuse at once when full).
    max_inflight: int | None = Field(default=None, ge=1)
    max_queued: int = Field(default=0, ge=0)
    queue_timeout_ms: int = Field(default=1000, ge=0)

    # Cost admission (gateway/cost.py, gateway/admission.py). One work unit = scoring
    # cost_chars_per_unit characters of text: 0.19 s of one text-service core, measured on the
    # 2-core development machine (python -m bench.text_budget); a frame and an audio second are
    # priced by the CPU time vision and speech spend on them there: ViT-B-32 fp32 at batch 32,
    # 0.19 CPU s a frame (bench.vision; ~0.02 with AMX bf16) = 1 unit; faster-whisper tiny.en
    # int8, 5.9 CPU s an audio minute (bench.speech) = 0.5 unit a second. bench/README.md,
    # "Cost admission", has the figures and this derivation.
    cost_chars_per_unit: int = Field(default=1000, ge=1)
    cost_units_per_frame: float = Field(default=1.0, ge=0)
    cost_units_per_audio_s: float = Field(default=0.5, ge=0)
    # The most one request may cost, all modalities: the largest video the media limits admit
    # (600 s: 300 units of audio + 64 frames) with some text. More: RESOURCE_EXHAUSTED.
    max_request_units: float = Field(default=400.0, gt=0)
    # The most one request's text may cost: 50,000 characters, ~10 s of one text-service core,
    # a sixth of it over the 60 s default deadline (the text service is one model thread per
    # replica, shared by every request). More: RESOURCE_EXHAUSTED naming this setting.
    max_request_text_units: float = Field(default=50.0, gt=0)
    # Units in flight, all requests together: what the local stack's two cores complete within
    # the 60 s default deadline (2 cores x 60 s / 0.19 s per unit = ~630).
    max_inflight_units: float = Field(default=600.0, gt=0)
    # While other callers are active, one caller holds at most this share of the slots and of
    # the units (caller = the authenticated caller name, else the peer's IP address). Active:
    # requests in flight or waiting, or one ended within caller_idle_s.
    caller_share: float = Field(default=0.5, gt=0, le=1)
    caller_idle_s: float = Field(default=10.0, ge=0)

    # Kept back from the request deadline for fusion and the reply, so a degraded verdict
    # still arrives in time when a service is slow: a tenth of the budget, at least 25 ms,
    # at most this.
    deadline_margin_ms: int = Field(default=250, ge=0)
    connect_timeout_s: float = Field(default=1.0, gt=0)

    # Retries: transient errors only (connect errors, 502/503/504), jittered exponential backoff.
    retry_max_attempts: int = Field(default=3, ge=1)
    retry_backoff_base_ms: int = Field(default=50, ge=0)
    retry_backoff_max_ms: int = Field(default=500, ge=0)

    # Circuit breaker per upstream.
    breaker_failure_threshold: int = Field(default=5, ge=1)
    breaker_reset_timeout_s: float = Field(default=5.0, gt=0)
    breaker_half_open_max_calls: int = Field(default=1, ge=1)

    # Active health check per upstream (gateway/upstreams/health.py): a round every interval
    # (0: off) waits up to timeout for an answer to GET <url><path>. A refused connection marks
    # the upstream unhealthy at once; no answer or an error status after unhealthy_threshold
    # rounds in a row (a failed round is confirmed at once). Unhealthy holds its breaker open
    # (calls fail at once, calls in flight are failed) until healthy_threshold rounds in a row
    # pass. A dead BentoML worker leaves its supervisor holding the port: connections are
    # accepted and never answered, which only a probe with a short timeout tells from slowness.
    # Worst case from a hang to failing fast: interval + unhealthy_threshold x timeout.
    health_check_interval_s: float = Field(default=1.0, ge=0)
    health_check_timeout_s: float = Field(default=0.5, gt=0)
    health_check_path: str = "/readyz"
    health_unhealthy_threshold: int = Field(default=2, ge=1)
    health_healthy_threshold: int = Field(default=2, ge=1)

    # Connection pool per upstream.
    pool_max_connections: int = Field(default=16, ge=1)
    pool_max_keepalive: int = Field(default=8, ge=0)

    # Frames per call to the vision service: at most its MODGATE_VISION_MAX_FRAMES_PER_REQUEST
    # (64); a request with more goes as parallel calls.
    vision_frames_per_call: int = Field(default=64, ge=1)
    # Audio tracks of one request transcribed at once (each a speech call, then a text call).
    speech_tracks_in_flight: int = Field(default=2, ge=1)

    # Text calls (gateway/orchestrator/text_work.py). A batch holds at most text_batch_items
    # items (the service takes 256, MODGATE_TEXT_MAX_ITEMS) and text_batch_chars characters:
    # the text service scores a call without interruption, so a batch is what a small request
    # may have to wait behind. 2,000 characters (the longest caption cue) are ~0.4 s of one
    # text-service core (bench.text_budget); BentoML refuses calls queued past ~10 s with 503.
    text_batch_items: int = Field(default=64, ge=1)
    text_batch_chars: int = Field(default=2000, ge=1)
    # A request with several batches sends at most this many at once ...
    text_request_concurrency: int = Field(default=2, ge=1)
    # ... and, gateway-wide, at most text_bulk_inflight such batches are at one text upstream
    # (about one per text replica), each only once no single-batch call has been in flight
    # for text_bulk_idle_ms: large text runs in the text service's idle time. A batch that has
    # waited text_bulk_max_wait_ms starts anyway; 0 (the default): never, because forcing one
    # every 2 s quadrupled the p95 of callers keeping the service busy (bench/README.md).
    text_bulk_inflight: int = Field(default=1, ge=1)
    text_bulk_idle_ms: int = Field(default=50, ge=0)
    text_bulk_max_wait_ms: int = Field(default=0, ge=0)

    # Shadow calls run beside the request and are compared after the verdict; they give up
    # after this long.
    shadow_timeout_s: float = Field(default=30.0, gt=0)

    @field_validator("health_check_path")
    @classmethod
    def _relative_path(cls, value: str) -> str:
        # A path on the configured upstream URL: probes never go anywhere else.
        if not value.startswith("/") or value.startswith("//") or "://" in value:
            raise ValueError(f"{value!r} must be a path on the upstream URL, like /readyz")
        return value

    @model_validator(mode="after")
    def _request_fits_budget(self) -> OrchestrationSettings:
        if self.max_request_units > self.max_inflight_units:
            raise ValueError(
                f"MODGATE_GATEWAY_MAX_REQUEST_UNITS ({self.max_request_units:g}) is over "
                f"MODGATE_GATEWAY_MAX_INFLIGHT_UNITS ({self.max_inflight_units:g}): a request that large "
                "could never be admitted; raise the budget or lower the per-request maximum"
            )
        return self

    def cost_rates(self) -> CostRates:
        return CostRates(self.cost_chars_per_unit, self.cost_units_per_frame, self.cost_units_per_audio_s)

    def load_upstreams(self) -> Upstreams:
        return load_upstreams(self.upstreams_file)
