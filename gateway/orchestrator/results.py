"""Checks on what a model service answered, before any of it may feed a decision.

A modality whose service failed, timed out or answered something unusable ends as
ModalityFailed (its state and the reason the verdict reports), never as an exception that
takes the request down.
"""

from __future__ import annotations

from gateway import metrics
from gateway.fusion import ScoredText, State
from gateway.upstreams.http import UpstreamError
from modgate.policy import Policy
from modgate.wire import PolicyRef, TextItem, TextResult


class ModalityFailed(Exception):
    def __init__(self, state: State, reason: str) -> None:
        super().__init__(reason)
        self.state = state
        self.reason = reason


def modality_failure(exc: UpstreamError) -> ModalityFailed:
    return ModalityFailed(State.TIMED_OUT if exc.timed_out else State.FAILED, str(exc))


def check_policy(service: str, variant: str, held: PolicyRef, policy: Policy) -> None:
    """A service scoring against another policy version must not feed this decision."""
    if held.name != policy.name or held.version != policy.version or held.digest != policy.digest:
        metrics.UPSTREAM_ERRORS.labels(service, variant, "policy").inc()
        raise ModalityFailed(
            State.FAILED,
            f"{service} service holds policy {held.name}@{held.version} (digest {held.digest}) but the "
            f"gateway decides with {policy.name}@{policy.version} (digest {policy.digest}); deploy the "
            "same policy file to both (MODGATE_POLICY_DIR) and restart or reload the service",
        )


def pair_texts(items: list[TextItem], results: list[TextResult], policy: Policy) -> list[ScoredText]:
    """Each item with the text service's result for it; every item must have one."""
    by_id = {item.id: item for item in items}
    scored: list[ScoredText] = []
    for result in results:
        check_policy("text", result.model.variant, result.policy, policy)
        for item_result in result.items:
            item = by_id.get(item_result.id)
            if item is not None:
                scored.append(ScoredText(item=item, result=item_result, model=result.model))
    missing = len(by_id) - len(scored)
    if missing > 0:
        raise ModalityFailed(State.FAILED, f"text service answered for {len(scored)} of {len(by_id)} items")
    return scored


def check_text_variant(results: list[TextResult], variant: str, url: str) -> None:
    """Speech and vision refuse a request meant for the other variant (409); the text service
    has no such check, so the gateway compares what it answered as."""
    served = {r.model.variant for r in results}
    if served != {variant}:
        raise ModalityFailed(
            State.FAILED,
            f"the text {variant} upstream ({url}) answered as variant "
            f"{', '.join(sorted(served))}; point the upstreams file at a replica running with "
            f"MODGATE_VARIANT={variant}",
        )
