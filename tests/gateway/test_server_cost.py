"""Cost admission through the real gateway process: a request over a per-request maximum is
RESOURCE_EXHAUSTED naming the setting, before it takes a slot (issue 21, item 1)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import grpc
import pytest

from modgate.tools.neighbour import caption_request
from modgate.v1 import moderation_pb2 as pb
from modgate.v1 import moderation_pb2_grpc as pb_grpc
from tests.gateway.gateway_process import running_gateway

pytestmark = pytest.mark.timeout(90)


@pytest.fixture(scope="module")
def stub(
    free_port: Callable[[], int], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[pb_grpc.ModerationStub]:
    env = {"MODGATE_GATEWAY_MAX_REQUEST_TEXT_UNITS": "20", "MODGATE_GATEWAY_MAX_REQUEST_UNITS": "30"}
    options = [("grpc.max_send_message_length", 64 << 20)]
    with (
        running_gateway(free_port(), tmp_path_factory.mktemp("logs"), env) as gateway,
        grpc.insecure_channel(gateway.address, options=options) as channel,
    ):
        yield pb_grpc.ModerationStub(channel)


def refusal(call: Callable[[], object]) -> grpc.Call:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return caught.value  # type: ignore[return-value]


def test_text_over_the_per_request_maximum_is_resource_exhausted(stub: pb_grpc.ModerationStub) -> None:
    error = refusal(lambda: stub.Moderate(caption_request(11), timeout=10))  # 22,000 characters
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "MODGATE_GATEWAY_MAX_REQUEST_TEXT_UNITS" in error.details()
    assert "22,000 text characters" in error.details()
    # Retrying the same request cannot help: no retry-after hint.
    assert "retry-after-ms" not in dict(error.trailing_metadata() or ())


def test_what_the_old_limits_let_through_is_refused(stub: pb_grpc.ModerationStub) -> None:
    error = refusal(lambda: stub.Moderate(caption_request(5000), timeout=30))  # 10,000,000 characters
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "10,000,000 text characters" in error.details()


def test_frames_count_toward_the_request_maximum(stub: pb_grpc.ModerationStub) -> None:
    # 20,000 characters (20 units, the text maximum) + a media request's frame cap (32 x 1 unit).
    request = caption_request(10)
    request.media = b"not decoded: refused before the split"
    error = refusal(lambda: stub.Moderate(request, timeout=10))
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "MODGATE_GATEWAY_MAX_REQUEST_UNITS" in error.details() and "32 frames" in error.details()
    # Fewer frames asked for: it fits.
    request.options.CopyFrom(pb.ModerateOptions(max_frames=4))
    error = refusal(lambda: stub.Moderate(request, timeout=10))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT  # past admission: the bytes are no video


def test_a_request_at_the_maximum_is_served(stub: pb_grpc.ModerationStub) -> None:
    verdict = stub.Moderate(caption_request(10), timeout=10)  # 20,000 characters = 20 units
    assert verdict.policy_name == "default"
