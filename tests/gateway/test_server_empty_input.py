"""Nothing to moderate is INVALID_ARGUMENT (issue 21, item 6), through the real gateway process.

An empty request, a ModerateStream with only a header and no text, and a request skipping every
modality all used to answer OK with every modality SKIPPED (which reads as ALLOW). Skipping
every modality is allowed only by a policy that says so (requests.allow_skip_all_modalities);
a header-only stream with a title stays a text-only request (test_server.py).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
import yaml

from modgate.policy import DEFAULT_POLICY_DIR
from modgate.v1 import moderation_pb2 as pb
from modgate.v1 import moderation_pb2_grpc as pb_grpc
from tests.gateway.gateway_process import running_gateway

pytestmark = pytest.mark.timeout(90)

ALL = [pb.MODALITY_AUDIO, pb.MODALITY_VISUAL, pb.MODALITY_TEXT]


@pytest.fixture(scope="module")
def policy_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default policy, plus a copy named `lenient` that allows skipping every modality."""
    directory = tmp_path_factory.mktemp("policies")
    shutil.copy(DEFAULT_POLICY_DIR / "default.yaml", directory / "default.yaml")
    lenient = yaml.safe_load((DEFAULT_POLICY_DIR / "default.yaml").read_text(encoding="utf-8"))
    lenient["name"] = "lenient"
    lenient["requests"] = {"allow_skip_all_modalities": True}
    (directory / "lenient.yaml").write_text(yaml.safe_dump(lenient), encoding="utf-8")
    return directory


@pytest.fixture(scope="module")
def stub(
    free_port: Callable[[], int], policy_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[pb_grpc.ModerationStub]:
    env = {"MODGATE_POLICY_DIR": str(policy_dir)}
    with (
        running_gateway(free_port(), tmp_path_factory.mktemp("logs"), env) as gateway,
        grpc.insecure_channel(gateway.address) as channel,
    ):
        yield pb_grpc.ModerationStub(channel)


def refusal(call: Callable[[], object]) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    error: grpc.Call = caught.value  # type: ignore[assignment]
    return error.code(), error.details() or ""


@pytest.mark.parametrize(
    "request_fields",
    [{}, {"title": "  ", "hashtags": [" "], "captions": [pb.CaptionCue(text=" ")]}, {"request_id": "r-7"}],
    ids=["empty", "blank text only", "ids only"],
)
def test_a_request_without_media_or_text_is_invalid_argument(
    stub: pb_grpc.ModerationStub, request_fields: dict[str, object]
) -> None:
    code, details = refusal(lambda: stub.Moderate(pb.ModerateRequest(**request_fields), timeout=10))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert details.startswith("nothing to moderate: the request has no media"), details


def test_a_header_only_stream_without_text_is_invalid_argument(stub: pb_grpc.ModerationStub) -> None:
    header = pb.ModerateChunk(header=pb.ModerateRequest(request_id="stream-1"))
    code, details = refusal(lambda: stub.ModerateStream(iter([header]), timeout=10))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "nothing to moderate" in details and "ModerateStream data" in details


def test_skipping_every_modality_is_invalid_argument_under_the_default_policy(
    stub: pb_grpc.ModerationStub,
) -> None:
    request = pb.ModerateRequest(title="hello", options=pb.ModerateOptions(skip_modalities=ALL))
    code, details = refusal(lambda: stub.Moderate(request, timeout=10))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert details.startswith("options.skip_modalities: skips AUDIO, VISUAL and TEXT"), details
    assert "requests.allow_skip_all_modalities" in details


def test_a_policy_may_allow_skipping_every_modality(stub: pb_grpc.ModerationStub) -> None:
    request = pb.ModerateRequest(
        title="hello", policy="lenient", options=pb.ModerateOptions(skip_modalities=ALL)
    )
    verdict = stub.Moderate(request, timeout=10)
    assert verdict.policy_name == "lenient"
    assert {m.state for m in verdict.modalities} == {pb.MODALITY_STATE_SKIPPED}


def test_text_alone_is_still_something_to_moderate(stub: pb_grpc.ModerationStub) -> None:
    verdict = stub.Moderate(pb.ModerateRequest(hashtags=["travel"]), timeout=10)
    assert verdict.policy_name == "default"
