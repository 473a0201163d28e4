"""Prometheus metrics of the gateway, on their own registry, served on MODGATE_GATEWAY_METRICS_PORT.

One registry per process: the collectors below are module-level (registered once) and every
gateway built in the process shares them, which is what Prometheus expects. MetricsEndpoint
serves the registry; gateway/app.py starts and stops it with the gRPC server.
"""

from __future__ import annotations

import logging
import threading
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from modgate.v1 import moderation_pb2 as pb

log = logging.getLogger(__name__)

REGISTRY = CollectorRegistry(auto_describe=True)

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

REQUESTS = Counter(
    "modgate_gateway_requests",
    "Moderation requests by gRPC status and decision (decision is 'none' without a verdict).",
    ["status", "decision"],
    registry=REGISTRY,
)
REQUEST_SECONDS = Histogram(
    "modgate_gateway_request_duration_seconds",
    "End-to-end request latency inside the gateway, by gRPC status.",
    ["status"],
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
STAGE_SECONDS = Histogram(
    "modgate_gateway_stage_duration_seconds",
    "Wall time per stage (queueing, split, speech, vision, text, transcript_text, fusion).",
    ["stage"],
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
MODALITY_SECONDS = Histogram(
    "modgate_gateway_modality_duration_seconds",
    "Time until a modality's result was known, by final state.",
    ["modality", "state"],
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
MODALITY_STATES = Counter(
    "modgate_gateway_modality_states",
    "Modality outcomes per request (OK, SKIPPED, FAILED, TIMED_OUT, UNCALIBRATED).",
    ["modality", "state"],
    registry=REGISTRY,
)
UPSTREAM_CALLS = Counter(
    "modgate_gateway_upstream_calls",
    "HTTP calls to model services (each retry attempt counts), by outcome.",
    ["service", "variant", "outcome"],
    registry=REGISTRY,
)
UPSTREAM_ERRORS = Counter(
    "modgate_gateway_upstream_errors",
    "Failed upstream calls by kind (connect, timeout, http_5xx, http_4xx, circuit_open, bad_response, "
    "policy).",
    ["service", "variant", "kind"],
    registry=REGISTRY,
)
UPSTREAM_RETRIES = Counter(
    "modgate_gateway_upstream_retries",
    "Retries of transient upstream errors.",
    ["service", "variant"],
    registry=REGISTRY,
)
UPSTREAM_SECONDS = Histogram(
    "modgate_gateway_upstream_duration_seconds",
    "Latency of one upstream call including retries.",
    ["service", "variant"],
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
BREAKER_STATE = Gauge(
    "modgate_gateway_breaker_state",
    "Circuit breaker state per upstream: 0 closed, 1 half-open, 2 open.",
    ["service", "variant"],
    registry=REGISTRY,
)
UPSTREAM_HEALTHY = Gauge(
    "modgate_gateway_upstream_healthy",
    "Active health check per upstream: 1 while its readiness probe passes, 0 while it fails "
    "(calls to it then fail at once).",
    ["service", "variant"],
    registry=REGISTRY,
)
UPSTREAM_PROBES = Counter(
    "modgate_gateway_upstream_probes",
    "Readiness probes per upstream by outcome (ok, refused, timeout, http_error, error, inconclusive).",
    ["service", "variant", "outcome"],
    registry=REGISTRY,
)
UPSTREAM_PROBE_SECONDS = Histogram(
    "modgate_gateway_upstream_probe_duration_seconds",
    "Latency of one readiness probe (a probe that times out counts its timeout).",
    ["service", "variant"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
    registry=REGISTRY,
)
MODALITY_SERVING = Gauge(
    "modgate_gateway_modality_serving",
    "Per modality: 1 while every upstream it needs is healthy, 0 while one fails its probe (the "
    "gRPC health name modgate.v1.Moderation/<MODALITY> says the same).",
    ["modality"],
    registry=REGISTRY,
)
SERVED_BY = Counter(
    "modgate_gateway_served_by",
    "Service results used in verdicts, by the variant that produced them.",
    ["service", "variant"],
    registry=REGISTRY,
)
CANARY_REQUESTS = Counter(
    "modgate_gateway_canary_requests",
    "Requests routed to a canary whose result is used (not shadow).",
    ["service"],
    registry=REGISTRY,
)
SHADOW_REQUESTS = Counter(
    "modgate_gateway_shadow_requests",
    "Shadow copies sent to a canary, by outcome (ok, failed, agree, disagree).",
    ["service", "outcome"],
    registry=REGISTRY,
)
# Per variant that served a service, so Prometheus (the chart's Argo Rollouts AnalysisTemplate)
# can apply `modgate canary report`'s rules: a verdict counts once for each service that ran for
# it (not SKIPPED), with the variant the verdict names for that modality. Answers from the store
# (duplicates) are not counted again. Categories come from the policies: bounded.
VERDICTS = Counter(
    "modgate_gateway_verdicts",
    "Verdicts by the variant that served each service that ran for them, and decision.",
    ["service", "variant", "decision"],
    registry=REGISTRY,
)
CATEGORY_FLAGS = Counter(
    "modgate_gateway_category_flags",
    "Verdicts that flagged a category (its score reached the policy's review threshold: REVIEW or "
    "BLOCK for it), by the variant that served each service that ran.",
    ["service", "variant", "category"],
    registry=REGISTRY,
)
VERDICT_SECONDS = Histogram(
    "modgate_gateway_verdict_duration_seconds",
    "End-to-end latency of the requests that got a verdict, by the variant that served each service.",
    ["service", "variant"],
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
SHADOW_DISAGREEMENTS = Counter(
    "modgate_gateway_shadow_disagreements",
    "Shadow results that would have changed the decision.",
    ["service"],
    registry=REGISTRY,
)
INFLIGHT = Gauge("modgate_gateway_inflight", "Requests being processed.", registry=REGISTRY)
QUEUED = Gauge("modgate_gateway_queued", "Requests waiting for an admission slot.", registry=REGISTRY)
INFLIGHT_UNITS = Gauge(
    "modgate_gateway_inflight_units", "Work units held by the requests being processed.", registry=REGISTRY
)
TEXT_BATCHES_WAITING = Gauge(
    "modgate_gateway_text_batches_waiting",
    "Text batches of multi-batch requests waiting for the text service (they yield to small requests).",
    ["variant"],
    registry=REGISTRY,
)
REJECTED = Counter(
    "modgate_gateway_rejected",
    "Requests turned away by admission control (full, units, caller_share, queue_timeout, too_costly).",
    ["reason"],
    registry=REGISTRY,
)
BANK_MATCHES = Counter(
    "modgate_gateway_bank_matches",
    "Requests acted on because of a hash-bank match, by bank and signal (md5, sha256: the upload's "
    "bytes; pdq: frames under the bank's video rule).",
    ["bank", "signal"],
    registry=REGISTRY,
)
SHORT_CIRCUITS = Counter(
    "modgate_gateway_bank_short_circuits",
    "Verdicts returned on an exact MD5/SHA-256 bank match, before splitting or any model call.",
    ["bank"],
    registry=REGISTRY,
)
BANK_LOOKUP_SECONDS = Histogram(
    "modgate_gateway_bank_lookup_seconds",
    "Time to look one upload's MD5/SHA-256 up in the policy's hash banks.",
    buckets=(0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05),
    registry=REGISTRY,
)
STORE_OUTCOMES = Counter(
    "modgate_gateway_store_outcomes",
    "What the verdict store did per request: stored (committed before the reply), spooled (store "
    "down: kept in the local spool), refused (store down, policy store.on_unavailable=refuse), "
    "from_store (a duplicate request_id answered from the store), coalesced (a duplicate that "
    "waited for the first one's computation), unstored (store down, duplicates not checked).",
    ["outcome"],
    registry=REGISTRY,
)
STORE_SECONDS = Histogram(
    "modgate_gateway_store_seconds",
    "Time of one verdict store operation (claim, commit, find), by operation.",
    ["operation"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0),
    registry=REGISTRY,
)
STORE_SPOOL_PENDING = Gauge(
    "modgate_gateway_store_spool_pending",
    "Verdicts in the local spool waiting for the verdict store to be back.",
    registry=REGISTRY,
)


_DECISIONS = {1: "ALLOW", 2: "REVIEW", 3: "BLOCK"}
_SERVICE_OF_MODALITY = {pb.MODALITY_AUDIO: "speech", pb.MODALITY_VISUAL: "vision", pb.MODALITY_TEXT: "text"}
_FLAGGED = (pb.DECISION_REVIEW, pb.DECISION_BLOCK)


def record_request(status: str, decision: int | None, seconds: float) -> None:
    """One finished request: its gRPC status name and decision (None without a verdict)."""
    label = _DECISIONS.get(decision, "none") if decision is not None else "none"
    REQUESTS.labels(status, label).inc()
    REQUEST_SECONDS.labels(status).observe(seconds)


def record_served(verdict: pb.Verdict, seconds: float) -> None:
    """A verdict just decided, counted per service that ran for it and the variant that served
    it (modgate_gateway_verdicts, ..._category_flags, ..._verdict_duration_seconds)."""
    if verdict.from_store:
        return
    decision = _DECISIONS.get(verdict.decision, "none")
    flagged = [c.category for c in verdict.categories if c.decision in _FLAGGED]
    for status in verdict.modalities:
        service = _SERVICE_OF_MODALITY.get(status.modality)
        if service is None or status.state == pb.MODALITY_STATE_SKIPPED:
            continue
        variant = status.model.variant or "stable"
        VERDICTS.labels(service, variant, decision).inc()
        VERDICT_SECONDS.labels(service, variant).observe(seconds)
        for category in flagged:
            CATEGORY_FLAGS.labels(service, variant, category).inc()


class MetricsEndpoint:
    """The /metrics HTTP endpoint (a daemon thread), started and stopped with the gateway."""

    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        self.port = port  # the bound port once started (0 asked for any free one)
        self.host = host
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """A busy port fails the start, loudly."""
        if self._server is not None:
            return
        try:
            self._server, self._thread = start_http_server(self.port, addr=self.host, registry=REGISTRY)
        except OSError as exc:
            raise OSError(
                f"cannot serve metrics on {self.host}:{self.port}: {exc}; set MODGATE_GATEWAY_METRICS_PORT "
                "to a free port (0 disables metrics)"
            ) from None
        self.port = int(self._server.server_address[1])
        log.info("metrics on http://%s:%d/metrics", self.host, self.port)

    def stop(self) -> None:
        server, thread, self._server, self._thread = self._server, self._thread, None, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
