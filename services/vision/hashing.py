"""PDQ hashes of a request's frames and their matches in the policy's hash banks (the vision side).

The vision service owns the frames, so it hashes them (PDQ + quality, pdqhash) and looks
them up in the banks the request's policy names (modgate.banks.matcher over the bank
directory, MODGATE_BANK_DIR), in the same /score call and beside the CLIP scoring: the
result is VisionResult.hashes (modgate.wire.HashResult). It needs no model, so it works when
the service runs uncalibrated. The policy's video rule is the gateway's (modgate.banks.rules):
it sees the whole video, which may take several vision requests.

Frames are hashed as sent (the gateway sends its sampled frames, at most 336 px a side, the
size `modgate bank add` hashes); frames larger than HASH_MAX_SIDE are first downscaled to it,
since PDQ's cost grows with the pixel count and its 64x64 core does not need them.

Spans: ``vision.hash`` (decode + PDQ) and ``vision.bank_lookup``. Metrics:
``modgate_bank_matches_total{bank}`` (frames matched), ``modgate_bank_lookup_seconds``,
``modgate_bank_entries{bank}`` (size of the loaded snapshot) and
``modgate_vision_hashed_frames_total{quality}`` (ok / low: under every consulted bank's floor).
"""

from __future__ import annotations

import io
import time
from collections.abc import Sequence
from pathlib import Path

import anyio
import bentoml
import numpy as np
from PIL import Image

from modgate import telemetry
from modgate.banks.checks import UnknownBankError, check_policy_dir_banks
from modgate.banks.config import BankSettings
from modgate.banks.matcher import BankMatcher, PdqLookup
from modgate.banks.pdq import PDQ_BYTES, pdq_frames
from modgate.banks.results import hash_result
from modgate.banks.signals import SignalType
from modgate.policy import Policy, PolicyError
from modgate.wire import HashResult

HASH_MAX_SIDE = 512
ATTR_BANKS = "modgate.bank.names"
ATTR_MATCHES = "modgate.bank.matches"

MATCHES = bentoml.metrics.Counter(
    name="modgate_bank_matches_total",
    documentation="Request frames matched in a hash bank (within the bank's PDQ distance), by bank",
    labelnames=["bank"],
)
LOOKUP_SECONDS = bentoml.metrics.Histogram(
    name="modgate_bank_lookup_seconds",
    documentation="Time to look one request's PDQ frame hashes up in the policy's hash banks",
    buckets=[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25],
)
ENTRIES = bentoml.metrics.Gauge(
    name="modgate_bank_entries",
    documentation="Entries in the loaded snapshot of each hash bank",
    labelnames=["bank"],
    multiprocess_mode="livemostrecent",  # one value per bank, not one per worker pid
)
HASHED = bentoml.metrics.Counter(
    name="modgate_vision_hashed_frames_total",
    documentation="Frames PDQ-hashed, by quality (ok; low: under every consulted bank's floor)",
    labelnames=["quality"],
)


def check_banks_at_start(policy_dir: Path, settings: BankSettings) -> None:
    """Exit the start with the fix when a policy names a bank the bank directory lacks."""
    try:
        check_policy_dir_banks(policy_dir, settings.dir)
    except UnknownBankError as exc:
        raise SystemExit(f"modgate vision: {exc}") from None
    except PolicyError:
        pass  # an unreadable policy directory is reported by the service's PolicyStore, as before


def _frame_pixels(path: Path, raw_shape: Sequence[int] | None) -> np.ndarray | None:
    """RGB uint8 of one request frame, or None when it does not decode (the scoring path
    reports that error to the caller)."""
    try:
        data = path.read_bytes()
        if raw_shape is not None:
            return np.frombuffer(data, dtype=np.uint8).reshape(tuple(raw_shape))
        with Image.open(io.BytesIO(data)) as image:
            if image.format == "JPEG":
                image.draft("RGB", (HASH_MAX_SIDE, HASH_MAX_SIDE))
            if max(image.size) > HASH_MAX_SIDE:
                image.thumbnail((HASH_MAX_SIDE, HASH_MAX_SIDE), Image.Resampling.BILINEAR)
            return np.asarray(image.convert("RGB"), dtype=np.uint8)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None


def hash_paths(paths: Sequence[Path], raw_shape: Sequence[int] | None) -> tuple[np.ndarray, np.ndarray]:
    """((N, 32) codes, (N,) qualities); an undecodable frame gets quality -1."""
    pixels = [_frame_pixels(path, raw_shape) for path in paths]
    good = [i for i, p in enumerate(pixels) if p is not None]
    codes = np.zeros((len(paths), PDQ_BYTES), dtype=np.uint8)
    qualities = np.full(len(paths), -1, dtype=np.int16)
    if good:
        codes[good], qualities[good] = pdq_frames([pixels[i] for i in good])
    return codes, qualities


class FrameHasher:
    """Hashes request frames and matches them against the banks of the request's policy."""

    def __init__(self, settings: BankSettings) -> None:
        self.matcher = BankMatcher(
            settings.dir, signals={SignalType.PDQ}, reload_interval_s=settings.reload_interval_s
        )

    async def hash_frames(
        self,
        paths: Sequence[Path],
        timestamps_ms: Sequence[int],
        frame_format: str,
        raw_shape: Sequence[int] | None,
        policy: Policy,
    ) -> HashResult | None:
        """The request's HashResult, or None when the policy names no bank."""
        if not policy.banks:
            return None
        started = time.perf_counter()
        with telemetry.span("vision.hash", {telemetry.Attr.FRAME_COUNT: len(paths)}, tracer=__name__):
            shape = raw_shape if frame_format == "raw" else None
            codes, qualities = await anyio.to_thread.run_sync(hash_paths, paths, shape)
        hashed = time.perf_counter()
        self.matcher.maybe_refresh()
        attributes = {
            ATTR_BANKS: ",".join(policy.banks),
            telemetry.Attr.POLICY: f"{policy.name}@{policy.version}",
        }
        with telemetry.span("vision.bank_lookup", attributes, tracer=__name__) as span:
            lookup = await anyio.to_thread.run_sync(self.matcher.match_pdq, codes, qualities, policy.banks)
            span.set_attribute(ATTR_MATCHES, len(lookup.hits))
        done = time.perf_counter()
        return self._result(policy, timestamps_ms, codes, qualities, lookup, hashed - started, done - hashed)

    def _result(
        self,
        policy: Policy,
        timestamps_ms: Sequence[int],
        codes: np.ndarray,
        qualities: np.ndarray,
        lookup: PdqLookup,
        hash_s: float,
        lookup_s: float,
    ) -> HashResult:
        loaded, hits = lookup.banks, lookup.hits
        for name in policy.banks:
            if name in loaded:
                ENTRIES.labels(bank=name).set(loaded[name].entries)
        for bank, _frame in {(h.bank, h.frame) for h in hits}:
            MATCHES.labels(bank=bank).inc()
        LOOKUP_SECONDS.observe(lookup_s)
        floor = min(rule.pdq_min_quality for rule in policy.banks.values())
        low = int((qualities < floor).sum())
        HASHED.labels(quality="ok").inc(len(qualities) - low)
        if low:
            HASHED.labels(quality="low").inc(low)
        timings = {"hash_ms": round(hash_s * 1000, 2), "lookup_ms": round(lookup_s * 1000, 2)}
        return hash_result(
            policy,
            timestamps_ms,
            codes,
            qualities,
            hits,
            banks=loaded,
            notes=lookup.notes,
            timings_ms=timings,
        )
