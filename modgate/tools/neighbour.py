"""Noisy-neighbour runs: what one heavy caller does to everybody else's latency and verdicts.

The same normal callers run twice in one invocation: alone, then beside a neighbour (its own
caller identity) sending maximum-size text requests. :func:`compare` returns both summaries of
the normal callers (:func:`modgate.tools.load.summarize`) and the ratios the acceptance
criterion is stated in: their p95 latency and their success rate with the neighbour over
without. `python -m bench.load --neighbour` is the command; tests/reliability uses it too.

"Success" here is a verdict with no FAILED or TIMED_OUT modality: the symptom of a starved
service is a verdict whose modality failed (fail-closed REVIEW), not an error status.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import grpc

from modgate.tools.load import CallerGroup, Outcome, Work, percentile, run_groups, summarize
from modgate.tools.mediagen import SENTENCES
from modgate.v1 import moderation_pb2 as pb

THREAT_TITLE = "I know where you live and I am going to hurt you"
CUE_CHARS = 2000  # the longest caption cue the gateway accepts (gateway/validation.py)


def english(chars: int, offset: int = 0) -> str:
    """English sentences (the generator's, rotated from `offset`) up to `chars` characters."""
    out: list[str] = []
    size, i = 0, offset
    while size < chars:
        sentence = SENTENCES[i % len(SENTENCES)]
        out.append(sentence)
        size += len(sentence) + 1
        i += 1
    return " ".join(out)[:chars]


def caption_request(cues: int, cue_chars: int = CUE_CHARS) -> pb.ModerateRequest:
    """A text-only request of `cues` caption cues of `cue_chars` characters each."""
    captions = [
        pb.CaptionCue(text=english(cue_chars, offset=i), start_ms=i * 1000, end_ms=i * 1000 + 900)
        for i in range(cues)
    ]
    return pb.ModerateRequest(captions=captions)


def threat_works() -> list[Work]:
    """The normal caller's request: a single threatening title (text only)."""
    return [Work("text", pb.ModerateRequest(title=THREAT_TITLE))]


def served(outcome: Outcome) -> bool:
    """A verdict whose every modality ran (or was skipped): nothing failed or timed out."""
    return outcome.status == "OK" and not {"FAILED", "TIMED_OUT"} & set(outcome.modalities.values())


def figures(outcomes: Sequence[Outcome], duration_s: float) -> dict[str, Any]:
    summary = summarize(outcomes, duration_s)
    summary["served_rate"] = round(sum(map(served, outcomes)) / len(outcomes), 4) if outcomes else 0.0
    latencies = [o.latency_s for o in outcomes if served(o)]
    summary["served_p95_ms"] = round(percentile(latencies, 95) * 1000, 1)
    return summary


def compare(
    target: str,
    normal: CallerGroup,
    neighbour: CallerGroup,
    *,
    duration_s: float,
    credentials: grpc.ChannelCredentials | None = None,
    say: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """The normal group alone, then beside the neighbour, `duration_s` each."""
    say(f"{normal.clients} normal callers alone for {duration_s:.0f} s")
    alone = run_groups(target, [normal], duration_s=duration_s, credentials=credentials)
    say(f"the same beside {neighbour.clients} neighbour callers for {duration_s:.0f} s")
    both = run_groups(target, [normal, neighbour], duration_s=duration_s, credentials=credentials)
    without = figures(alone, duration_s)
    beside = figures([o for o in both if o.group == normal.name], duration_s)
    heavy = figures([o for o in both if o.group == neighbour.name], duration_s)
    return {
        "without_neighbour": without,
        "with_neighbour": beside,
        "neighbour": heavy,
        "p95_ratio": _ratio(beside["served_p95_ms"], without["served_p95_ms"]),
        "served_ratio": _ratio(beside["served_rate"], without["served_rate"]),
    }


def _ratio(value: float, base: float) -> float:
    return round(value / base, 3) if base else float("nan")
