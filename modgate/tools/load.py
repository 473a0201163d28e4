"""Closed-loop load over the real gRPC API: callers, outcomes, and their summary.

`clients` callers each send one request at a time (from a list of :class:`Work`, in turn),
every call with a deadline. Callers come in groups (:class:`CallerGroup`: its own works, number
of callers and bearer token, i.e. its own identity to the gateway's fairness); :func:`run_load`
is the one-group case, :mod:`modgate.tools.neighbour` runs a heavy group beside normal ones.
A RESOURCE_EXHAUSTED answer carries "retry-after-ms"; the caller waits that long (capped)
before its next request, as a well-behaved client does. So the load
is bounded by construction, and what it shows is how the gateway sheds the excess.

`python -m bench.load` is the command on top of this; the reliability tests use it directly,
with :mod:`modgate.tools.faults` to kill services under load.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from modgate.v1 import moderation_pb2 as pb
from modgate.v1 import moderation_pb2_grpc as pb_grpc

MODALITY_NAMES = {v: k.removeprefix("MODALITY_") for k, v in pb.Modality.items()}
STATE_NAMES = {v: k.removeprefix("MODALITY_STATE_") for k, v in pb.ModalityState.items()}
DECISION_NAMES = {v: k.removeprefix("DECISION_") for k, v in pb.Decision.items()}
# Statuses a caller can act on: a verdict or "try again later".
RETRYABLE = {"RESOURCE_EXHAUSTED", "UNAVAILABLE"}
# A call counts as hung when it comes back this much after its deadline.
HUNG_SLACK_S = 1.0


@dataclass(frozen=True)
class Work:
    """One kind of request the callers send."""

    kind: str  # "text" or "video"
    request: pb.ModerateRequest


@dataclass(frozen=True)
class CallerGroup:
    """Callers that share one identity (bearer token) and send the same kinds of request."""

    name: str
    works: Sequence[Work]
    clients: int = 1
    token: str | None = None
    deadline_s: float = 10.0


@dataclass
class Outcome:
    client: int
    kind: str
    request_id: str
    started: float  # time.monotonic()
    ended: float
    status: str  # "OK" or the gRPC status name
    deadline_s: float
    retry_after_ms: int | None = None
    degraded: bool = False
    modalities: dict[str, str] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)  # per modality, when not OK
    details: str = ""
    decision: str = ""  # ALLOW | REVIEW | BLOCK, with a verdict
    verdict_reasons: list[str] = field(default_factory=list)  # the verdict's (why this decision)
    group: str = ""

    @property
    def latency_s(self) -> float:
        return self.ended - self.started

    @property
    def hung(self) -> bool:
        return self.latency_s > self.deadline_s + HUNG_SLACK_S


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def _channel(target: str, credentials: grpc.ChannelCredentials | None) -> grpc.Channel:
    options = [("grpc.max_send_message_length", 64 * 1024 * 1024)]
    if credentials is None:
        return grpc.insecure_channel(target, options=options)
    return grpc.secure_channel(target, credentials, options=options)


def _one_call(
    stub: pb_grpc.ModerationStub,
    work: Work,
    client: int,
    request_id: str,
    deadline_s: float,
    metadata: tuple[tuple[str, str], ...],
) -> Outcome:
    request = pb.ModerateRequest()
    request.CopyFrom(work.request)
    request.request_id = request_id  # so the gateway's log lines can be matched to outcomes
    started = time.monotonic()
    try:
        verdict = stub.Moderate(request, timeout=deadline_s, metadata=metadata)
    except grpc.RpcError as error:
        retry_after = None
        for key, value in error.trailing_metadata() or ():  # type: ignore[attr-defined]
            if key == "retry-after-ms":
                with contextlib.suppress(ValueError):
                    retry_after = int(value)
        return Outcome(
            client,
            work.kind,
            request_id,
            started,
            time.monotonic(),
            error.code().name,  # type: ignore[attr-defined]
            deadline_s,
            retry_after_ms=retry_after,
            details=(error.details() or "")[:200],  # type: ignore[attr-defined]
        )
    return Outcome(
        client,
        work.kind,
        request_id,
        started,
        time.monotonic(),
        "OK",
        deadline_s,
        degraded=verdict.degraded,
        modalities={MODALITY_NAMES[m.modality]: STATE_NAMES[m.state] for m in verdict.modalities},
        reasons={MODALITY_NAMES[m.modality]: m.reason[:200] for m in verdict.modalities if m.reason},
        decision=DECISION_NAMES[verdict.decision],
        verdict_reasons=list(verdict.reasons),  # whole: the failure rule is at the end of a reason
    )


def run_load(
    target: str,
    works: Sequence[Work],
    *,
    clients: int = 8,
    duration_s: float = 60.0,
    deadline_s: float = 10.0,
    max_retry_wait_s: float = 2.0,
    credentials: grpc.ChannelCredentials | None = None,
    token: str | None = None,
    on_outcome: Callable[[Outcome], None] | None = None,
    until: threading.Event | None = None,
) -> list[Outcome]:
    """`clients` closed-loop callers for `duration_s` (or until `until` is set, if sooner);
    every call has `deadline_s`."""
    group = CallerGroup("load", works, clients, token, deadline_s)
    return run_groups(
        target,
        [group],
        duration_s=duration_s,
        max_retry_wait_s=max_retry_wait_s,
        credentials=credentials,
        on_outcome=on_outcome,
        until=until,
    )


def run_groups(
    target: str,
    groups: Sequence[CallerGroup],
    *,
    duration_s: float = 60.0,
    max_retry_wait_s: float = 2.0,
    credentials: grpc.ChannelCredentials | None = None,
    on_outcome: Callable[[Outcome], None] | None = None,
    until: threading.Event | None = None,
) -> list[Outcome]:
    """Every group's closed-loop callers at once, for `duration_s` (or until `until` is set)."""
    if not groups or any(not g.works for g in groups):
        raise ValueError("give at least one group, each with at least one kind of request")
    outcomes: list[Outcome] = []
    lock = threading.Lock()
    end = time.monotonic() + duration_s

    def caller(group: CallerGroup, index: int) -> None:
        metadata = (("authorization", f"Bearer {group.token}"),) if group.token else ()
        with _channel(target, credentials) as channel:
            stub = pb_grpc.ModerationStub(channel)
            sent = 0
            while time.monotonic() < end and not (until is not None and until.is_set()):
                work = group.works[(index + sent) % len(group.works)]
                sent += 1
                request_id = f"{group.name}-{index}-{sent}"
                outcome = _one_call(stub, work, index, request_id, group.deadline_s, metadata)
                outcome.group = group.name
                with lock:
                    outcomes.append(outcome)
                if on_outcome is not None:
                    on_outcome(outcome)
                if outcome.status == "RESOURCE_EXHAUSTED" and outcome.retry_after_ms is not None:
                    # Honour the server's hint (bounded: the run has an end).
                    time.sleep(
                        min(outcome.retry_after_ms / 1000, max_retry_wait_s, max(end - time.monotonic(), 0))
                    )
                elif outcome.status != "OK":
                    time.sleep(0.05)  # no busy loop against a failing server

    threads = [
        threading.Thread(target=caller, args=(g, i), name=f"{g.name}-{i}", daemon=True)
        for g in groups
        for i in range(g.clients)
    ]
    for thread in threads:
        thread.start()
    longest = max(g.deadline_s for g in groups)
    for thread in threads:
        # Each caller finishes its last call at most one deadline after the end.
        thread.join(timeout=duration_s + longest + HUNG_SLACK_S + 30)
    stuck = [t.name for t in threads if t.is_alive()]
    if stuck:
        raise RuntimeError(f"callers still waiting past every deadline: {stuck}")
    return sorted(outcomes, key=lambda o: o.started)


def summarize(outcomes: Sequence[Outcome], duration_s: float) -> dict[str, Any]:
    statuses = Counter(o.status for o in outcomes)
    ok = [o for o in outcomes if o.status == "OK"]
    shed = [o for o in outcomes if o.status == "RESOURCE_EXHAUSTED"]
    ms = lambda values: {  # noqa: E731
        f"p{q}": round(percentile(values, q) * 1000, 1) for q in (50, 95, 99)
    }
    by_kind = {}
    for kind in sorted({o.kind for o in outcomes}):
        mine = [o for o in ok if o.kind == kind]
        by_kind[kind] = {"ok": len(mine), "latency_ms": ms([o.latency_s for o in mine])}
    hints = [o.retry_after_ms for o in shed if o.retry_after_ms is not None]
    return {
        "requests": len(outcomes),
        "statuses": dict(statuses),
        "success_rate": round(len(ok) / len(outcomes), 4) if outcomes else 0.0,
        "answered_rate": round(
            sum(1 for o in outcomes if o.status == "OK" or o.status in RETRYABLE) / len(outcomes), 4
        )
        if outcomes
        else 0.0,
        "degraded": sum(1 for o in ok if o.degraded),
        "ok_per_s": round(len(ok) / duration_s, 2),
        "latency_ok_ms": ms([o.latency_s for o in ok]),
        "latency_all_ms": ms([o.latency_s for o in outcomes]),
        "by_kind": by_kind,
        "shed": {
            "count": len(shed),
            "with_retry_after": len(hints),
            "retry_after_ms": {"min": min(hints), "max": max(hints)} if hints else {},
            "latency_ms": ms([o.latency_s for o in shed]),
        },
        "modality_states": dict(
            sorted(Counter(f"{m}:{state}" for o in ok for m, state in o.modalities.items()).items())
        ),
        "hung": sum(1 for o in outcomes if o.hung),
        "max_latency_ms": round(max((o.latency_s for o in outcomes), default=0.0) * 1000, 1),
    }


def default_works(directory: Path) -> list[Work]:
    """Text-only requests and two small videos (spoken, 2-3 s), alternating."""
    from modgate.tools.samples import Line, Subtitle, make_video

    videos = [
        make_video(directory / "hello.mp4", (Line(0.3, "hello everyone, welcome back"),), duration_s=2.5),
        make_video(
            directory / "quiet.mp4",
            subtitles=(Subtitle(0, 1500, "a quiet walk in the park"),),
            duration_s=2.0,
        ),
    ]
    texts = [
        pb.ModerateRequest(title="my cooking video", description="pasta with tomatoes", hashtags=["food"]),
        pb.ModerateRequest(title="game night", description="we crushed it in the second half"),
    ]
    works = []
    for video, text in zip(videos, texts, strict=True):
        works.append(Work("text", text))
        works.append(Work("video", pb.ModerateRequest(media=video.path.read_bytes(), title="clip")))
    return works
