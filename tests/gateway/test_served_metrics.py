"""The per-variant counters the chart's AnalysisTemplate queries: one count per service that
ran for a verdict, under the variant the verdict names; skipped modalities and answers from
the store add nothing."""

from __future__ import annotations

from gateway import metrics
from modgate.v1 import moderation_pb2 as pb


def sample(name: str, **labels: str) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


def verdict(*, from_store: bool = False) -> pb.Verdict:
    return pb.Verdict(
        decision=pb.DECISION_BLOCK,
        from_store=from_store,
        categories=[
            pb.CategoryScore(category="violence", score=0.9, decision=pb.DECISION_BLOCK),
            pb.CategoryScore(category="harassment", score=0.6, decision=pb.DECISION_REVIEW),
            pb.CategoryScore(category="spam", score=0.1, decision=pb.DECISION_ALLOW),
        ],
        modalities=[
            pb.ModalityStatus(
                modality=pb.MODALITY_TEXT, state=pb.MODALITY_STATE_OK, model=pb.ModelRef(variant="canary")
            ),
            pb.ModalityStatus(
                modality=pb.MODALITY_VISUAL,
                state=pb.MODALITY_STATE_FAILED,
                model=pb.ModelRef(variant="stable"),
            ),
            pb.ModalityStatus(modality=pb.MODALITY_AUDIO, state=pb.MODALITY_STATE_SKIPPED),
        ],
    )


def counts() -> dict[str, float]:
    return {
        "text_canary_block": sample(
            "modgate_gateway_verdicts_total", service="text", variant="canary", decision="BLOCK"
        ),
        "vision_stable_block": sample(
            "modgate_gateway_verdicts_total", service="vision", variant="stable", decision="BLOCK"
        ),
        "speech_any": sum(
            sample("modgate_gateway_verdicts_total", service="speech", variant=v, decision="BLOCK")
            for v in ("stable", "canary")
        ),
        "text_canary_violence": sample(
            "modgate_gateway_category_flags_total", service="text", variant="canary", category="violence"
        ),
        "text_canary_harassment": sample(
            "modgate_gateway_category_flags_total", service="text", variant="canary", category="harassment"
        ),
        "text_canary_spam": sample(
            "modgate_gateway_category_flags_total", service="text", variant="canary", category="spam"
        ),
        "text_canary_seconds": sample(
            "modgate_gateway_verdict_duration_seconds_count", service="text", variant="canary"
        ),
        "text_canary_le_025": sample(
            "modgate_gateway_verdict_duration_seconds_bucket", service="text", variant="canary", le="0.25"
        ),
    }


def test_a_verdict_counts_once_per_service_that_ran_under_its_variant() -> None:
    before = counts()
    metrics.record_served(verdict(), 0.2)
    metrics.record_served(verdict(from_store=True), 0.2)  # a duplicate answered from the store
    after = counts()
    delta = {k: after[k] - before[k] for k in before}
    assert delta == {
        "text_canary_block": 1,
        "vision_stable_block": 1,  # FAILED still served the request: the verdict was decided without it
        "speech_any": 0,  # SKIPPED
        "text_canary_violence": 1,
        "text_canary_harassment": 1,
        "text_canary_spam": 0,
        "text_canary_seconds": 1,
        "text_canary_le_025": 1,
    }
