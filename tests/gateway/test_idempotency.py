"""The real gateway process and its verdict store: every verdict stored before the reply, a
request_id answered from the store the second time, reuse for another request refused.

split_only gateways (no model services): what is checked here is the store's side of the
request path; tests/e2e/test_e2e_store.py checks it with the model services (no model call on
a duplicate, concurrent duplicates across two gateways, SIGKILL, the spool).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest

from modgate.store import StoreSettings, VerdictStore
from modgate.tools.mediagen import Generated, MediaSpec
from modgate.v1 import moderation_pb2 as pb
from modgate.v1 import moderation_pb2_grpc as pb_grpc
from tests.gateway.gateway_process import GatewayProcess, running_gateway

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def store_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('idem') / 'verdicts.db'}"


@pytest.fixture(scope="module")
def gateway(
    tmp_path_factory: pytest.TempPathFactory, free_port: Callable[[], int], store_url: str
) -> Iterator[GatewayProcess]:
    env = {"MODGATE_STORE_URL": store_url}
    with running_gateway(free_port(), tmp_path_factory.mktemp("idem-logs"), env) as process:
        yield process


@pytest.fixture(scope="module")
def clip(make_media: Callable[[MediaSpec], Generated]) -> bytes:
    return make_media(MediaSpec(width=160, height=120, duration_s=2.0)).data


def moderate(gateway: GatewayProcess, request: pb.ModerateRequest) -> pb.Verdict:
    with grpc.insecure_channel(gateway.address) as channel:
        return pb_grpc.ModerationStub(channel).Moderate(request, timeout=60)


def stored(store_url: str, verdict_id: str) -> pb.Verdict | None:
    store = VerdictStore.open(StoreSettings(url=store_url))
    try:
        record = store.get(verdict_id)
    finally:
        store.close()
    return None if record is None else pb.Verdict.FromString(record.verdict)


def stages(verdict: pb.Verdict) -> list[str]:
    return [t.stage for t in verdict.timings]


def test_every_verdict_is_stored_as_sent(gateway: GatewayProcess, store_url: str, clip: bytes) -> None:
    verdict = moderate(gateway, pb.ModerateRequest(content_id="c-1", media=clip))
    assert len(verdict.verdict_id) == 32 and verdict.decided_at_ms > 0 and not verdict.from_store
    assert stored(store_url, verdict.verdict_id) == verdict


def test_a_request_id_twice_answers_the_stored_verdict(gateway: GatewayProcess, clip: bytes) -> None:
    request = pb.ModerateRequest(request_id="idem-1", content_id="c-2", title="hello", media=clip)
    first = moderate(gateway, request)
    second = moderate(gateway, request)
    assert not first.from_store and second.from_store
    assert second.verdict_id == first.verdict_id and second.decided_at_ms == first.decided_at_ms
    assert "split" in stages(first) and stages(second) == ["store_lookup"]
    same = pb.Verdict()
    same.CopyFrom(second)
    same.from_store = False
    same.ClearField("timings")
    same.timings.extend(first.timings)
    assert same == first  # everything but from_store and timings is the verdict as first sent


def test_a_request_id_reused_for_another_request_is_already_exists(
    gateway: GatewayProcess, clip: bytes
) -> None:
    moderate(gateway, pb.ModerateRequest(request_id="idem-2", title="first title", media=clip))
    with pytest.raises(grpc.RpcError) as caught:
        moderate(gateway, pb.ModerateRequest(request_id="idem-2", title="another title", media=clip))
    assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert "idem-2" in caught.value.details() and "new one" in caught.value.details()
    # Another caller's id space is its own: with auth off every caller is "anonymous", so the
    # same id with a third request is refused too.
    with pytest.raises(grpc.RpcError) as again:
        moderate(gateway, pb.ModerateRequest(request_id="idem-2", title="third", media=clip))
    assert again.value.code() == grpc.StatusCode.ALREADY_EXISTS


def test_concurrent_duplicates_in_one_gateway_are_one_computation(
    gateway: GatewayProcess, store_url: str, clip: bytes
) -> None:
    request = pb.ModerateRequest(request_id="idem-3", content_id="c-3", media=clip)
    with ThreadPoolExecutor(8) as pool:
        verdicts = list(pool.map(lambda _: moderate(gateway, request), range(8)))
    assert len({v.verdict_id for v in verdicts}) == 1
    assert sum(not v.from_store for v in verdicts) == 1  # one computed, seven answered from the store
    store = VerdictStore.open(StoreSettings(url=store_url))
    try:
        assert [s.request_id for s in store.summaries(content_id="c-3")] == ["idem-3"]
    finally:
        store.close()


def test_requests_without_an_id_are_each_decided(gateway: GatewayProcess, clip: bytes) -> None:
    request = pb.ModerateRequest(content_id="c-4", media=clip)
    first, second = moderate(gateway, request), moderate(gateway, request)
    assert first.verdict_id != second.verdict_id and not second.from_store
    assert first.request_id != second.request_id  # generated ids


def test_store_off_keeps_nothing(tmp_path: Path, free_port: Callable[[], int], clip: bytes) -> None:
    env = {"MODGATE_STORE_ENABLED": "false"}
    with running_gateway(free_port(), tmp_path, env) as process:
        request = pb.ModerateRequest(request_id="idem-5", media=clip)
        first, second = moderate(process, request), moderate(process, request)
    assert first.verdict_id == "" and second.verdict_id == "" and not second.from_store
    assert "verdict store off" in process.log()
