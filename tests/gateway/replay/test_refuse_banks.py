"""refuse() judges stored exact bank hits under the policy asked about, as the gateway would:
the bank's action, category and short-circuit come from that policy's rule (issue 17)."""

from __future__ import annotations

import pytest

from gateway.fusion import ModalityOutcome, State
from gateway.media.limits import StreamsOverLimit
from gateway.orchestrator.record import ModelsNeverRan, fused_record, refuse, short_circuit_record
from gateway.orchestrator.state import RunState
from modgate.banks.rules import ExactFinding
from modgate.banks.signals import SignalType
from modgate.policy import Modality, Policy, load_policies, parse_policy
from modgate.v1 import moderation_pb2 as pb

DEFAULT = load_policies()["default"]


def with_bank(action: str = "BLOCK", *, short_circuit: bool = True, category: str = "violence") -> Policy:
    document = DEFAULT.model_dump(mode="json")
    document["banks"] = {
        "known": {"category": category, "action": action, "exact_short_circuit": short_circuit}
    }
    return parse_policy(document)


def hit(policy: Policy) -> ExactFinding:
    rule = policy.banks["known"]
    return ExactFinding("known", rule.category, rule.action, SignalType.MD5, "e1", rule.exact_short_circuit)


def text_only_record(policy: Policy) -> dict:
    run = RunState(policy=policy)
    run.outcomes = {
        Modality.TEXT: ModalityOutcome(Modality.TEXT, State.OK, items=0),
        Modality.AUDIO: ModalityOutcome(Modality.AUDIO, State.SKIPPED, reason="no audio"),
        Modality.VISUAL: ModalityOutcome(Modality.VISUAL, State.SKIPPED, reason="no video"),
    }
    return fused_record(run, [hit(policy)], None, StreamsOverLimit.REVIEW)


def test_a_short_circuited_record_takes_the_new_policys_bank_action() -> None:
    stored_under = with_bank("BLOCK")
    record = short_circuit_record([hit(stored_under)])
    assert refuse(record, stored_under).decision == pb.DECISION_BLOCK
    replayed = refuse(record, with_bank("REVIEW"))
    assert replayed.decision == pb.DECISION_REVIEW
    harassment = refuse(record, with_bank("BLOCK", category="harassment"))
    assert {c.category for c in harassment.categories if c.decision == pb.DECISION_BLOCK} == {"harassment"}


@pytest.mark.parametrize(
    "policy", [with_bank(short_circuit=False), DEFAULT], ids=["no-short-circuit", "no-bank"]
)
def test_a_short_circuited_record_cannot_be_refused_where_the_models_would_run(policy: Policy) -> None:
    record = short_circuit_record([hit(with_bank("BLOCK"))])
    with pytest.raises(ModelsNeverRan, match="rescan"):
        refuse(record, policy)


def test_a_fused_record_applies_the_new_action_or_short_circuits_as_the_gateway_would() -> None:
    stored_under = with_bank("REVIEW", short_circuit=False)
    record = text_only_record(stored_under)
    assert refuse(record, stored_under).decision == pb.DECISION_REVIEW
    assert refuse(record, with_bank("BLOCK", short_circuit=False)).decision == pb.DECISION_BLOCK
    assert refuse(record, DEFAULT).decision == pb.DECISION_ALLOW  # the bank is not named any more
    short = refuse(record, with_bank("BLOCK", short_circuit=True))
    assert short.decision == pb.DECISION_BLOCK
    assert {m.state for m in short.modalities} == {pb.MODALITY_STATE_SKIPPED}
    assert any(r.startswith("short-circuit:") for r in short.reasons)
