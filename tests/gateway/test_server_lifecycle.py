"""Gateway process lifecycle: the concurrency limit and graceful shutdown on SIGTERM."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest

from modgate.tools.mediagen import Generated, MediaSpec
from modgate.v1 import moderation_pb2 as pb
from modgate.v1 import moderation_pb2_grpc as pb_grpc
from tests.gateway.gateway_process import running_gateway

pytestmark = pytest.mark.timeout(90)


def held_stream(release: threading.Event, data: bytes) -> Iterator[pb.ModerateChunk]:
    """A ModerateStream upload that stays in flight until `release` is set."""
    yield pb.ModerateChunk(header=pb.ModerateRequest(request_id="held"))
    release.wait(timeout=30)
    yield pb.ModerateChunk(data=data)


def wait_for(predicate: Callable[[], bool], timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def refused_while(stub: pb_grpc.ModerationStub, refused: list[grpc.RpcError]) -> Callable[[], bool]:
    """A probe that is True once a unary request is refused (the one slot is taken)."""

    def probe() -> bool:
        try:
            stub.Moderate(pb.ModerateRequest(title="t"), timeout=5)
        except grpc.RpcError as error:
            refused.append(error)
            return True
        return False

    return probe


# One request slot: a second request is refused while the held upload is in flight, which
# also tells the tests exactly when the upload has reached the server.
ONE_SLOT = {"MODGATE_GATEWAY_MAX_CONCURRENT_REQUESTS": "1", "MODGATE_GATEWAY_RETRY_AFTER_MS": "250"}


def test_over_the_concurrency_limit_is_resource_exhausted_with_retry_after(
    free_port: Callable[[], int], tmp_path: Path, make_media: Callable[[MediaSpec], Generated]
) -> None:
    clip = make_media(MediaSpec())
    with (
        running_gateway(free_port(), tmp_path, ONE_SLOT) as gateway,
        grpc.insecure_channel(gateway.address) as channel,
    ):
        stub = pb_grpc.ModerationStub(channel)
        release = threading.Event()
        in_flight = stub.ModerateStream.future(held_stream(release, clip.data), timeout=60)
        refused: list[grpc.RpcError] = []
        try:
            assert wait_for(refused_while(stub, refused)), "a second request was never refused"
        finally:
            release.set()
        error = refused[-1]
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert ("retry-after-ms", "250") in tuple(error.trailing_metadata() or ())
        assert in_flight.result(timeout=30).media.has_video
        # The slot is free again once the held request is done.
        assert stub.Moderate(pb.ModerateRequest(title="t"), timeout=5).policy_name == "default"


def test_sigterm_finishes_in_flight_requests_then_exits_cleanly(
    free_port: Callable[[], int], tmp_path: Path, make_media: Callable[[MediaSpec], Generated]
) -> None:
    clip = make_media(MediaSpec())
    env = {**ONE_SLOT, "MODGATE_GATEWAY_SHUTDOWN_GRACE_S": "20"}
    with (
        running_gateway(free_port(), tmp_path, env) as gateway,
        grpc.insecure_channel(gateway.address) as channel,
    ):
        stub = pb_grpc.ModerationStub(channel)
        release = threading.Event()
        in_flight = stub.ModerateStream.future(held_stream(release, clip.data), timeout=60)
        try:
            assert wait_for(refused_while(stub, [])), "the held upload never reached the server"
            gateway.process.send_signal(signal.SIGTERM)
            assert wait_for(lambda: "shutting down" in gateway.log()), gateway.log()
        finally:
            release.set()
        verdict = in_flight.result(timeout=30)
        assert verdict.request_id == "held" and verdict.media.frames_sampled == 4
        assert gateway.process.wait(timeout=30) == 0
        with pytest.raises(grpc.RpcError) as caught:
            stub.Moderate(pb.ModerateRequest(title="after shutdown"), timeout=5)
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]
