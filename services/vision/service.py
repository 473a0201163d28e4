"""The vision service: OpenCLIP zero-shot risk scores for video frames over HTTP (BentoML).

Run it alone from the repository root::

    bentoml serve services.vision.service:Vision                 # 127.0.0.1:3002 by default
    bentoml serve services.vision.service:Vision --port 3002 --host 0.0.0.0

It refuses to start without CLIP weights (see services/vision/models.py for the sources and
``python -m services.vision.import_model``) unless ``MODGATE_VISION_ALLOW_UNCALIBRATED=true``,
in which case it serves random weights and every response carries ``model.calibrated=false``.

Health: ``GET /livez``; ``GET /readyz`` answers 200 once the model is loaded, the policies'
prompt embeddings are cached and the batcher is warmed up. ``GET /metrics`` (Prometheus) has
``modgate_vision_model_batch_frames`` (frames per model batch), ``modgate_vision_frames_total``
(by outcome: encoded / duplicate) and BentoML's ``bentoml_service_adaptive_batch_size``.

Request (what the gateway sends)
--------------------------------
``POST /score`` with ``Content-Type: multipart/form-data``. Non-file parts are form fields whose
values are JSON (a bare string is taken as a string):

==================  ========  ================================================================
part                required  content
==================  ========  ================================================================
``frames``          yes       one *file* part per frame, repeated, in timeline order (the
                              part's filename and content type are ignored). With
                              ``frame_format=jpeg``: the encoded image (JPEG; PNG/WebP also
                              decode), any size, at most MODGATE_VISION_MAX_FRAME_BYTES
                              (8 MiB). With ``frame_format=raw``: exactly H*W*3 bytes of
                              uint8 RGB, row-major, H = W = the model input size (``/info``)
``timestamps_ms``   yes       JSON list of ints >= 0, one per frame, e.g. ``[0, 500, 1000]``
``policy``          no        policy name (default ``default``)
``policy_version``  no        the version the caller holds; a service holding another
                              version re-reads its policy directory first. The response's
                              ``policy`` says what was actually used, so compare it
``frame_format``    no        ``jpeg`` (default) or ``raw``
``raw_shape``       raw only  JSON ``[H, W, 3]``; must equal the model input size
``variant``         no        ``stable`` or ``canary``: the variant the caller meant to reach;
                              a replica serving the other answers 409
==================  ========  ================================================================

At most MODGATE_VISION_MAX_FRAMES_PER_REQUEST (64) frames per request. For example::

    httpx.post(f"{base}/score",
               files=[("frames", (f"f{i}.jpg", jpeg, "image/jpeg")) for i, jpeg in enumerate(jpegs)],
               data={"timestamps_ms": json.dumps(ts), "policy": "default", "frame_format": "jpeg"})

JPEG frames are resized like open_clip's eval transform (short side to the input size, centre
crop). Frames whose perceptual hash (dHash of Y, Cb, Cr) is within MODGATE_VISION_DEDUP_DISTANCE of an
earlier frame in the same request are not sent to the model; they get that frame's scores.

Response
--------
200: JSON :class:`modgate.wire.VisionResult`: ``frames`` (per frame, in request order: index,
timestamp_ms, scores = category -> calibrated score in [0, 1], best_prompts = category -> the
ensemble prompt closest to the frame, duplicate_of = index of the earlier frame whose scores
were copied, or null), ``duplicates_skipped``, ``batch_sizes`` (sizes of the model batches this
request's frames rode in; larger than the request's own frame count when BentoML's adaptive
batching merged concurrent requests), ``model`` (name, version = weights sha256 prefix,
engine, variant, calibrated), ``policy`` (name, version, digest of the policy scored against)
and ``timings_ms`` (decode incl. hashing, dedup, encode, score, total). Scores are evidence, never a decision.
``ocr`` (:class:`modgate.wire.OcrResult`, null when MODGATE_VISION_OCR_ENABLED=false or the
policy's ``ocr.enabled`` is false) is the on-screen text read from the frames, beside the CLIP
encoding (services/vision/ocr/): ``cues`` (text, start_ms, end_ms, confidence, frames: the
consecutive frames showing it), ``frames_read``, ``frames_unchanged`` (same picture as a frame
read: its text reused; dHash duplicates are still read, a caption barely moves a dHash),
``frames_with_text``, ``boxes``, ``model`` (PP-OCR, sha256-pinned) and ``timings_ms``.
``hashes`` (:class:`modgate.wire.HashResult`, null when the policy names no hash bank): each
frame's PDQ hash and quality and its matches in the policy's banks (services/vision/hashing.py).

``POST /info`` (empty JSON body ``{}``) answers :class:`modgate.wire.VisionInfo`: model,
input_size (for raw frames), limits, dedup distance and the policies held.

Errors: JSON ``{"error": "<what was wrong and what to send instead>", "field": "<part>"}`` with

* 400: no frames, timestamps_ms not one non-negative int per frame, an undecodable image, a raw
  frame with the wrong byte count; also BentoML's own 400 ``{"error": "...validation
  error...", "detail": [...]}`` for a mistyped part (e.g. frame_format not jpeg/raw)
* 404: unknown policy name
* 409: ``variant`` does not match this replica's MODGATE_VARIANT
* 413: more frames than MODGATE_VISION_MAX_FRAMES_PER_REQUEST, or a frame over
  MODGATE_VISION_MAX_FRAME_BYTES or 40 megapixels
* 422: ``raw_shape`` other than ``[input_size, input_size, 3]``
* 503: the model is still loading (retry), or BentoML shed load past MODGATE_VISION_MAX_LATENCY_MS

Process layout: ``Vision`` (this port) decodes, de-duplicates and scores; the model lives in a
second BentoML service, ``VisionEncoder``, started by ``bentoml serve`` as its dependency (a
separate process reached over a local socket). Its ``encode_images`` API is
``batchable=True``, which is what lets BentoML 1.4 merge frames of concurrent requests into
one model batch: a batchable method only batches when called through its HTTP route, and
calls between services go through that route with pickled numpy arrays
(services/vision/encoder_client.py is the front's side of it; frames.py decodes the frames).
"""

from __future__ import annotations

import asyncio
import logging
import time
from http import HTTPStatus
from pathlib import Path
from typing import Annotated, Any, Literal

import anyio
import bentoml
import numpy as np
from opentelemetry import trace
from pydantic import BeforeValidator, Field

from modgate import telemetry
from modgate.policy import Policy
from modgate.wire import FrameScore, VisionInfo, VisionResult
from services.common import (
    PolicyStore,
    RequestError,
    UnknownPolicyError,
    check_variant,
    error_response,
    keep_policy,
    policy_ref,
)
from services.vision.calibration import score_frames
from services.vision.config import VisionSettings
from services.vision.dedup import find_duplicates
from services.vision.encoder_client import EncoderClient, EncoderModel
from services.vision.frames import check_frames, decode_frames
from services.vision.hashing import FrameHasher, check_banks_at_start
from services.vision.models import ModelSourceError, resolve_source
from services.vision.ocr.models import OcrModelError
from services.vision.ocr.reader import FrameFiles
from services.vision.ocr.setup import build_reader, ocr_models, read_beside
from services.vision.prompts import RECHECK_SECONDS, PromptCache

log = logging.getLogger(__name__)
_tracer = trace.get_tracer(__name__)

SETTINGS = VisionSettings()
telemetry.setup_telemetry("vision", variant=SETTINGS.variant, log_level="INFO")
try:
    # Cheap (stat + sha256): fail `bentoml serve` itself, with the fix in the message, instead
    # of letting the encoder worker crash and be restarted forever.
    SOURCE = resolve_source(SETTINGS)
    OCR_MODELS = ocr_models(SETTINGS)
except (ModelSourceError, OcrModelError) as exc:
    raise SystemExit(f"modgate vision: {exc}") from None
check_banks_at_start(SETTINGS.policy_dir, SETTINGS.banks)  # exits naming a policy bank not in the bank dir

# Batch ids ride in a float32 column; wrap before they stop being exact integers.
BATCH_ID_MODULUS = 1 << 24
# How long /readyz waits for a warm-up under way before answering 503.
READY_CHECK_WAIT_S = 0.1

BATCH_FRAMES = bentoml.metrics.Histogram(
    name="modgate_vision_model_batch_frames",
    documentation="Frames per vision model batch (adaptive batching merges concurrent requests)",
    buckets=[1, 2, 4, 8, 16, 32, 64, 128, 256],
)
FRAMES = bentoml.metrics.Counter(
    name="modgate_vision_frames_total",
    documentation="Frames received by the vision service, by outcome (encoded, duplicate)",
    labelnames=["outcome"],
)


def _as_text(value: Any) -> Any:
    # Form fields arrive JSON-decoded: a policy named "2026" must not become an int.
    return str(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value


FormText = Annotated[str, BeforeValidator(_as_text)]


@bentoml.service(
    name="vision-encoder",
    workers=1,
    threads=1,  # one model batch at a time; torch parallelises inside it
    traffic={"timeout": SETTINGS.request_timeout_s},
    **telemetry.bentoml_tracing_config(),
)
class VisionEncoder:
    """Holds the CLIP model. Internal: reached only by `Vision`, never on the public port."""

    def __init__(self) -> None:
        import torch

        from services.vision.encoder import ClipEncoder
        from services.vision.models import load_clip, pick_device

        if SETTINGS.threads:
            torch.set_num_threads(SETTINGS.threads)
        clip = load_clip(SOURCE, pick_device(SETTINGS.device))
        self.encoder = ClipEncoder(clip, variant=SETTINGS.variant, precision=SETTINGS.precision)
        self._batch_id = 0
        log.info(
            "vision encoder: %s from %s on %s, %s, %d threads (calibrated=%s)",
            self.encoder.model_id,
            SOURCE.origin,
            clip.device,
            self.encoder.precision,
            torch.get_num_threads(),
            SOURCE.calibrated,
        )

    @bentoml.api(
        batchable=True,
        batch_dim=0,
        max_batch_size=SETTINGS.max_batch_size,
        max_latency_ms=SETTINGS.max_latency_ms,
    )
    def encode_images(self, frames: np.ndarray) -> np.ndarray:
        """(N, S, S, 3) uint8 -> (N, 2 + D) float32: [batch size, batch id, unit-norm embedding].

        The two leading columns tell each caller which model batch its rows rode in.
        """
        n = int(frames.shape[0])
        self._batch_id = (self._batch_id + 1) % BATCH_ID_MODULUS
        embeddings = self.encoder.encode_images(frames)
        BATCH_FRAMES.observe(n)
        head = np.empty((n, 2), dtype=np.float32)
        head[:, 0] = n
        head[:, 1] = self._batch_id
        return np.concatenate([head, embeddings], axis=1)

    @bentoml.api
    def encode_texts(self, texts: list[str]) -> np.ndarray:
        return self.encoder.encode_texts(texts)

    @bentoml.api
    def describe(self) -> dict[str, Any]:
        clip = self.encoder.clip
        return {
            "model": self.encoder.info.model_dump(),
            "preprocess": clip.preprocess.to_dict(),
            "logit_scale": clip.logit_scale,
        }


@bentoml.service(
    name="vision",
    workers=1,
    traffic={"timeout": SETTINGS.request_timeout_s},
    http={"host": SETTINGS.host, "port": SETTINGS.port},
    **telemetry.bentoml_tracing_config(),
)
class Vision:
    encoder = bentoml.depends(VisionEncoder)

    def __init__(self) -> None:
        self.settings = SETTINGS
        self.policies: PolicyStore[Policy] = PolicyStore(
            SETTINGS.policy_dir, keep_policy, reload_s=RECHECK_SECONDS
        )
        self.encoder_client = EncoderClient(lambda: self.encoder, max_batch_size=SETTINGS.max_batch_size)
        self.prompts = PromptCache(self.encoder_client.encode_texts)
        self.hasher = FrameHasher(SETTINGS.banks)
        self._ready: EncoderModel | None = None
        self._ready_lock = asyncio.Lock()
        self._warming: asyncio.Future[EncoderModel] | None = None
        self.ocr = build_reader(OCR_MODELS, SETTINGS)  # on-screen text; None: off

    async def _get_ready(self) -> EncoderModel:
        """The encoder's model, once every policy's prompts are embedded and batching is warm."""
        if self._ready is not None:
            return self._ready
        async with self._ready_lock:
            if self._ready is None:
                ready = await self.encoder_client.describe()
                for policy in self.policies.all():
                    await self.prompts.get(policy)
                await self.encoder_client.warm_up(ready.preprocess.size)
                self._ready = ready
                log.info("vision: ready (%s, calibrated=%s)", ready.model_id, ready.model.calibrated)
        return self._ready

    async def __is_ready__(self) -> bool:
        # /readyz answers at once, 503 until the warm-up is done: the warm-up (tens of seconds on
        # a busy CPU) runs in a task of its own, so a readiness probe (the gateway's has a 0.5 s
        # timeout) never hangs on it and sees the service turn ready on its next round.
        if self._ready is not None:
            return True
        if self._warming is None or self._warming.done():
            self._warming = asyncio.ensure_future(self._get_ready())
        done, _ = await asyncio.wait({self._warming}, timeout=READY_CHECK_WAIT_S)
        if not done:
            return False
        exc = self._warming.exception()
        if exc is not None:  # the encoder may still be loading: the next check tries again
            log.info("vision: not ready yet: %s", exc)
            return False
        return True

    @bentoml.api(route="/info")
    async def info(self) -> VisionInfo:
        """Model identity, raw-frame input size, limits and the policies held."""
        ready = await self._get_ready()
        return VisionInfo(
            model=ready.model,
            input_size=ready.preprocess.size,
            max_frames_per_request=self.settings.max_frames_per_request,
            max_frame_bytes=self.settings.max_frame_bytes,
            max_batch_size=self.settings.max_batch_size,
            dedup_distance=self.settings.dedup_distance,
            policies=[policy_ref(p) for p in self.policies.all()],
            ocr_model=self.ocr.model if self.ocr else None,
        )

    @bentoml.api(route="/score")
    async def score(
        self,
        # BentoML's idiom for optional list parameters (`list[Path] | None` loses its file handling).
        frames: list[Path] = Field(default_factory=list),  # noqa: B008
        timestamps_ms: list[int] = Field(default_factory=list),  # noqa: B008
        policy: FormText = "default",
        policy_version: FormText | None = None,
        frame_format: Literal["jpeg", "raw"] = "jpeg",
        raw_shape: list[int] | None = None,
        variant: FormText | None = None,
    ) -> VisionResult:
        """Score frames against a policy's vision prompts (see the module docstring)."""
        try:
            return await self._score(
                frames, timestamps_ms, policy, policy_version, frame_format, raw_shape, variant
            )
        except RequestError as error:  # FrameError included
            return error_response(error)  # type: ignore[return-value]

    def _policy(self, name: str, version: str | None) -> Policy:
        try:
            return self.policies.get(name, version)
        except UnknownPolicyError as exc:
            raise RequestError(HTTPStatus.NOT_FOUND, "policy", str(exc)) from None

    async def _ready_for_request(self) -> EncoderModel:
        try:
            return await self._get_ready()
        except Exception as exc:
            raise RequestError(
                HTTPStatus.SERVICE_UNAVAILABLE, "", f"the vision model is not ready ({exc}); retry shortly"
            ) from None

    async def _encode(self, ready: EncoderModel, frames: list[np.ndarray]) -> tuple[np.ndarray, list[int]]:
        with _tracer.start_as_current_span(
            "vision.encode",
            attributes={telemetry.Attr.FRAME_COUNT: len(frames), telemetry.Attr.MODEL_ID: ready.model_id},
        ) as span:
            embeddings, batch_sizes = await self.encoder_client.encode_frames(frames)
            span.set_attribute(telemetry.Attr.BATCH_SIZE, max(batch_sizes))
        return embeddings, batch_sizes

    async def _score(
        self,
        paths: list[Path],
        timestamps_ms: list[int],
        policy_name: str,
        policy_version: str | None,
        frame_format: str,
        raw_shape: list[int] | None,
        variant: str | None,
    ) -> VisionResult:
        started = time.perf_counter()
        check_variant(variant, self.settings.variant)
        check_frames(len(paths), timestamps_ms, self.settings.max_frames_per_request)
        policy = self._policy(policy_name, policy_version)
        ready = await self._ready_for_request()
        t_decode = time.perf_counter()
        decoded, hashes = await anyio.to_thread.run_sync(
            lambda: decode_frames(
                paths,
                timestamps_ms,
                frame_format=frame_format,
                raw_shape=raw_shape,
                pre=ready.preprocess,
                max_frame_bytes=self.settings.max_frame_bytes,
            )
        )
        hashing = asyncio.create_task(
            self.hasher.hash_frames(paths, timestamps_ms, frame_format, raw_shape, policy)
        )
        t_dedup = time.perf_counter()
        duplicate_of = find_duplicates(hashes, self.settings.dedup_distance)
        unique = [i for i, d in enumerate(duplicate_of) if d is None]
        t_encode = time.perf_counter()
        files = FrameFiles(paths, timestamps_ms, frame_format, raw_shape)
        (embeddings, batch_sizes), ocr = await read_beside(
            self._encode(ready, [decoded[i] for i in unique]), self.ocr, policy, files
        )
        t_score = time.perf_counter()
        bank = await self.prompts.get(policy)
        scores, best = score_frames(embeddings, bank, ready.logit_scale)
        skipped = len(paths) - len(unique)
        FRAMES.labels(outcome="encoded").inc(len(unique))
        if skipped:
            FRAMES.labels(outcome="duplicate").inc(skipped)
        done = time.perf_counter()
        return VisionResult(
            frames=_frame_scores(timestamps_ms, duplicate_of, unique, scores, best),
            duplicates_skipped=skipped,
            batch_sizes=batch_sizes,
            model=ready.model,
            policy=bank.policy,
            ocr=ocr,
            hashes=await hashing,
            timings_ms={
                "decode_ms": round((t_dedup - t_decode) * 1000, 2),
                "dedup_ms": round((t_encode - t_dedup) * 1000, 2),
                "encode_ms": round((t_score - t_encode) * 1000, 2),
                "score_ms": round((done - t_score) * 1000, 2),
                "total_ms": round((done - started) * 1000, 2),
            },
        )


def _frame_scores(
    timestamps_ms: list[int],
    duplicate_of: list[int | None],
    unique: list[int],
    scores: list[dict[str, float]],
    best: list[dict[str, str]],
) -> list[FrameScore]:
    """One FrameScore per request frame, in request order; a duplicate gets its original's scores."""
    row_of = {frame: row for row, frame in enumerate(unique)}
    results = []
    for i, dup in enumerate(duplicate_of):
        row = row_of[i if dup is None else dup]
        results.append(
            FrameScore(
                index=i,
                timestamp_ms=timestamps_ms[i],
                scores=scores[row],
                best_prompts=best[row],
                duplicate_of=dup,
            )
        )
    return results
