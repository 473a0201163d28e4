"""The real gateway process (`python -m gateway`) called over gRPC: verdicts, status codes,
health and reflection."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from modgate.policy import load_policies
from modgate.tools.mediagen import Cue, Generated, MediaSpec, random_bytes, save, truncated
from modgate.v1 import moderation_pb2 as pb
from modgate.v1 import moderation_pb2_grpc as pb_grpc
from tests.gateway.gateway_process import REPO, GatewayProcess, running_gateway

pytestmark = pytest.mark.timeout(90)

MiB = 1024 * 1024
UNARY_LIMIT = 1 * MiB
STREAM_LIMIT = 2 * MiB
CUES = (Cue(500, 1700, "Hello world"), Cue(2000, 3250, "Second line"))
CLIP = MediaSpec(subtitles=CUES, metadata=(("title", "clip"),))
GRPCURL = REPO / ".tools" / "bin" / "grpcurl"
INVALID = grpc.StatusCode.INVALID_ARGUMENT
EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED


@pytest.fixture(scope="module")
def media_root(
    tmp_path_factory: pytest.TempPathFactory, make_media: Callable[[MediaSpec], Generated]
) -> Path:
    root = tmp_path_factory.mktemp("media_root")
    clip = make_media(CLIP)
    shutil.copy(clip.path, root / "clip.mp4")
    shutil.copy(
        make_media(MediaSpec(width=160, height=120, duration_s=6.5, audio=None)).path, root / "long.mp4"
    )
    save(truncated(clip.data), root / "truncated.mp4")
    save(random_bytes(), root / "random.mkv")
    save(b"", root / "empty.mp4")
    with (root / "huge.mp4").open("wb") as handle:  # sparse: over the stream limit without the bytes
        handle.truncate(STREAM_LIMIT + 1)
    outside = tmp_path_factory.mktemp("outside")
    shutil.copy(clip.path, outside / "secret.mp4")
    (root / "link.mp4").symlink_to(outside / "secret.mp4")
    return root


@pytest.fixture(scope="module")
def gateway(
    free_port: Callable[[], int], media_root: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayProcess]:
    env = {
        "MODGATE_GATEWAY_MEDIA_ROOT": str(media_root),
        "MODGATE_GATEWAY_MAX_UNARY_BYTES": str(UNARY_LIMIT),
        "MODGATE_GATEWAY_MAX_STREAM_BYTES": str(STREAM_LIMIT),
        "MODGATE_GATEWAY_MAX_DURATION_S": "6",
    }
    with running_gateway(free_port(), tmp_path_factory.mktemp("logs"), env) as process:
        yield process


@pytest.fixture(scope="module")
def stub(gateway: GatewayProcess) -> Iterator[pb_grpc.ModerationStub]:
    options = [("grpc.max_send_message_length", 64 * MiB), ("grpc.max_receive_message_length", 64 * MiB)]
    with grpc.insecure_channel(gateway.address, options=options) as channel:
        yield pb_grpc.ModerationStub(channel)


@pytest.fixture(scope="module")
def clip_bytes(media_root: Path) -> bytes:
    return (media_root / "clip.mp4").read_bytes()


def status_of(call: Callable[[], object]) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    error: grpc.Call = caught.value  # type: ignore[assignment]
    return error.code(), error.details() or ""


def assert_split_only_verdict(verdict: pb.Verdict) -> None:
    default = load_policies()["default"]
    assert verdict.decision == pb.DECISION_UNSPECIFIED
    assert (verdict.policy_name, verdict.policy_version) == (default.name, default.version)
    assert [(m.modality, m.state, m.reason) for m in verdict.modalities] == [
        (modality, pb.MODALITY_STATE_SKIPPED, "no model services configured")
        for modality in (pb.MODALITY_AUDIO, pb.MODALITY_VISUAL, pb.MODALITY_TEXT)
    ]


def assert_clip_media(info: pb.MediaInfo) -> None:
    assert info.duration_ms == 4000
    assert info.container == "mp4"
    assert (info.width, info.height) == (320, 240)
    assert info.has_audio and info.has_video
    assert info.subtitle_streams == 1
    assert info.frames_sampled == 4
    assert list(info.undecodable_streams) == []


# --- verdicts ---------------------------------------------------------------------------------


def test_moderate_inline_media(stub: pb_grpc.ModerationStub, clip_bytes: bytes) -> None:
    verdict = stub.Moderate(
        pb.ModerateRequest(request_id="req-1", content_id="content-9", media=clip_bytes), timeout=30
    )
    assert (verdict.request_id, verdict.content_id) == ("req-1", "content-9")
    assert_split_only_verdict(verdict)
    assert_clip_media(verdict.media)
    stages = [t.stage for t in verdict.timings]
    assert stages[0] == "validate" and "split" in stages


def test_request_id_is_generated_when_empty(stub: pb_grpc.ModerationStub) -> None:
    first = stub.Moderate(pb.ModerateRequest(title="text only"), timeout=10)
    second = stub.Moderate(pb.ModerateRequest(title="text only"), timeout=10)
    assert len(first.request_id) == 32 and int(first.request_id, 16) >= 0
    assert first.request_id != second.request_id


def test_text_only_request_has_no_media(stub: pb_grpc.ModerationStub) -> None:
    verdict = stub.Moderate(pb.ModerateRequest(title="hello", hashtags=["#fun"]), timeout=10)
    assert_split_only_verdict(verdict)
    assert verdict.media == pb.MediaInfo()


def test_moderate_file_uri_under_media_root(stub: pb_grpc.ModerationStub, media_root: Path) -> None:
    verdict = stub.Moderate(pb.ModerateRequest(media_uri=(media_root / "clip.mp4").as_uri()), timeout=30)
    assert_split_only_verdict(verdict)
    assert_clip_media(verdict.media)


def test_options_change_sampling(stub: pb_grpc.ModerationStub, clip_bytes: bytes) -> None:
    request = pb.ModerateRequest(
        media=clip_bytes, options=pb.ModerateOptions(frame_sample_fps=2, max_frames=5)
    )
    assert stub.Moderate(request, timeout=30).media.frames_sampled == 5
    skip_visual = pb.ModerateRequest(
        media=clip_bytes, options=pb.ModerateOptions(skip_modalities=[pb.MODALITY_VISUAL])
    )
    info = stub.Moderate(skip_visual, timeout=30).media
    assert info.has_video and info.frames_sampled == 0


def chunks(header: pb.ModerateRequest, data: bytes, size: int = 64 * 1024) -> Iterator[pb.ModerateChunk]:
    yield pb.ModerateChunk(header=header)
    for offset in range(0, len(data), size):
        yield pb.ModerateChunk(data=data[offset : offset + size])


def test_moderate_stream_matches_unary(stub: pb_grpc.ModerationStub, clip_bytes: bytes) -> None:
    header = pb.ModerateRequest(request_id="stream-1", content_id="c")
    streamed = stub.ModerateStream(chunks(header, clip_bytes), timeout=30)
    unary = stub.Moderate(pb.ModerateRequest(media=clip_bytes), timeout=30)
    assert streamed.request_id == "stream-1"
    assert_split_only_verdict(streamed)
    assert streamed.media == unary.media
    assert "receive" in [t.stage for t in streamed.timings]


def test_stream_header_options_apply(stub: pb_grpc.ModerationStub, clip_bytes: bytes) -> None:
    header = pb.ModerateRequest(options=pb.ModerateOptions(frame_sample_fps=2, max_frames=5))
    assert stub.ModerateStream(chunks(header, clip_bytes, 1000), timeout=30).media.frames_sampled == 5


def test_stream_with_header_only_is_text_only(stub: pb_grpc.ModerationStub) -> None:
    verdict = stub.ModerateStream(iter([pb.ModerateChunk(header=pb.ModerateRequest(title="t"))]), timeout=10)
    assert verdict.media == pb.MediaInfo()


# --- refusals ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "request_fields", "fragment"),
    [
        ("media and uri", {"media": b"x", "media_uri": "file:///x.mp4"}, "media"),
        ("unknown policy", {"policy": "no-such-policy"}, "policy"),
        ("negative fps", {"options": pb.ModerateOptions(frame_sample_fps=-1)}, "frame_sample_fps"),
        ("nan fps", {"options": pb.ModerateOptions(frame_sample_fps=math.nan)}, "frame_sample_fps"),
        ("bad modality", {"options": pb.ModerateOptions(skip_modalities=[0])}, "skip_modalities"),
        ("long title", {"title": "x" * 1025}, "title"),
        ("long description", {"description": "é" * 8193}, "description"),
        ("too many hashtags", {"hashtags": ["#a"] * 65}, "hashtags"),
        ("long request id", {"request_id": "r" * 129}, "request_id"),
        ("long content id", {"content_id": "c" * 257}, "content_id"),
        ("caption ends early", {"captions": [pb.CaptionCue(text="x", start_ms=5, end_ms=1)]}, "captions[0]"),
        ("bad locale", {"locale": "english please"}, "locale"),
        ("random bytes", {"media": random_bytes()}, "not a supported container"),
        ("ftp uri", {"media_uri": "ftp://example.com/a.mp4"}, "scheme"),
    ],
)
def test_bad_requests_are_invalid_argument(
    stub: pb_grpc.ModerationStub, name: str, request_fields: dict[str, object], fragment: str
) -> None:
    code, details = status_of(lambda: stub.Moderate(pb.ModerateRequest(**request_fields), timeout=10))
    assert code == INVALID, name
    assert fragment in details, details


@pytest.mark.parametrize(
    ("file_name", "fragment"),
    [
        ("truncated.mp4", "truncated or corrupt"),
        ("random.mkv", "not a supported container"),
        ("empty.mp4", "empty"),
        ("missing.mp4", "does not exist"),
        ("link.mp4", "outside the gateway's media root"),
        ("../outside/secret.mp4", "path traversal"),
        ("%2e%2e/clip.mp4", "path traversal"),
    ],
)
def test_bad_media_uris_are_invalid_argument(
    stub: pb_grpc.ModerationStub, media_root: Path, file_name: str, fragment: str
) -> None:
    uri = f"file://{media_root}/{file_name}"
    code, details = status_of(lambda: stub.Moderate(pb.ModerateRequest(media_uri=uri), timeout=10))
    assert code == INVALID
    assert fragment in details, details


def test_truncated_inline_media_is_invalid_argument(stub: pb_grpc.ModerationStub, clip_bytes: bytes) -> None:
    code, details = status_of(
        lambda: stub.Moderate(pb.ModerateRequest(media=truncated(clip_bytes)), timeout=10)
    )
    assert code == INVALID and "truncated" in details


def test_http_uri_is_permission_denied_when_fetching_is_off(stub: pb_grpc.ModerationStub) -> None:
    request = pb.ModerateRequest(media_uri="http://127.0.0.1:9/clip.mp4")
    code, details = status_of(lambda: stub.Moderate(request, timeout=10))
    assert code == grpc.StatusCode.PERMISSION_DENIED and "disabled" in details


@pytest.mark.parametrize("size", [UNARY_LIMIT + 1, UNARY_LIMIT + 2 * MiB])
def test_unary_over_the_byte_limit_is_resource_exhausted(stub: pb_grpc.ModerationStub, size: int) -> None:
    # Just over the limit: the gateway's own check; far over: gRPC's receive limit.
    code, _ = status_of(lambda: stub.Moderate(pb.ModerateRequest(media=b"\0" * size), timeout=10))
    assert code == EXHAUSTED


def test_over_duration_and_file_size_limits_are_resource_exhausted(
    stub: pb_grpc.ModerationStub, media_root: Path
) -> None:
    code, details = status_of(
        lambda: stub.Moderate(pb.ModerateRequest(media_uri=(media_root / "long.mp4").as_uri()), timeout=10)
    )
    assert code == EXHAUSTED and "6 s limit" in details
    code, details = status_of(
        lambda: stub.Moderate(pb.ModerateRequest(media_uri=(media_root / "huge.mp4").as_uri()), timeout=10)
    )
    assert code == EXHAUSTED and "limit" in details


def test_stream_over_the_byte_limit_is_refused_while_receiving(stub: pb_grpc.ModerationStub) -> None:
    data = random_bytes(STREAM_LIMIT + 1)
    code, details = status_of(
        lambda: stub.ModerateStream(chunks(pb.ModerateRequest(), data, 256 * 1024), timeout=20)
    )
    assert code == EXHAUSTED and f"{STREAM_LIMIT}-byte limit" in details


@pytest.mark.parametrize(
    ("messages", "fragment"),
    [
        ([], "first ModerateStream message must carry the request header"),
        ([pb.ModerateChunk(data=b"abc")], "first ModerateStream message must carry the request header"),
        (
            [pb.ModerateChunk(header=pb.ModerateRequest()), pb.ModerateChunk(header=pb.ModerateRequest())],
            "only the first ModerateStream message",
        ),
        ([pb.ModerateChunk(header=pb.ModerateRequest(media=b"x"))], "must leave media and media_uri empty"),
        ([pb.ModerateChunk(header=pb.ModerateRequest(policy="nope"))], "unknown policy"),
    ],
)
def test_malformed_streams_are_invalid_argument(
    stub: pb_grpc.ModerationStub, messages: list[pb.ModerateChunk], fragment: str
) -> None:
    code, details = status_of(lambda: stub.ModerateStream(iter(messages), timeout=10))
    assert code == INVALID
    assert fragment in details, details


# --- health and reflection ----------------------------------------------------------------


def test_health_reports_serving(gateway: GatewayProcess) -> None:
    with grpc.insecure_channel(gateway.address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", "modgate.v1.Moderation"):
            reply = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
        code, _ = status_of(lambda: health.Check(health_pb2.HealthCheckRequest(service="nope"), timeout=5))
        assert code == grpc.StatusCode.NOT_FOUND


def test_reflection_lists_the_service(gateway: GatewayProcess) -> None:
    with grpc.insecure_channel(gateway.address) as channel:
        database = ProtoReflectionDescriptorDatabase(channel)
        assert "modgate.v1.Moderation" in database.get_services()
        service = database.FindFileContainingSymbol("modgate.v1.Moderation").service
        assert [m.name for m in service[0].method] == ["Moderate", "ModerateStream"]


def test_grpcurl_lists_the_service_via_reflection(gateway: GatewayProcess) -> None:
    result = subprocess.run(
        [str(GRPCURL), "-plaintext", gateway.address, "list"], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    assert "modgate.v1.Moderation" in result.stdout.split()
    assert "grpc.health.v1.Health" in result.stdout.split()


def test_grpcurl_calls_moderate_with_only_the_proto_file(gateway: GatewayProcess, media_root: Path) -> None:
    # -proto makes grpcurl build its client from the .proto alone (no reflection).
    request = json.dumps({"mediaUri": (media_root / "clip.mp4").as_uri(), "contentId": "via-grpcurl"})
    result = subprocess.run(
        [
            str(GRPCURL),
            "-plaintext",
            "-import-path",
            str(REPO / "proto"),
            "-proto",
            "modgate/v1/moderation.proto",
            "-d",
            request,
            gateway.address,
            "modgate.v1.Moderation/Moderate",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    verdict = json.loads(result.stdout)
    assert verdict["contentId"] == "via-grpcurl"
    assert verdict["media"]["container"] == "mp4" and verdict["media"]["framesSampled"] == 4


def test_python_client_generated_from_the_proto_alone(gateway: GatewayProcess, tmp_path: Path) -> None:
    """Generate stubs from moderation.proto into an empty dir and call the server with them,
    in a fresh interpreter that cannot see the repository."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{REPO / 'proto'}",
            f"--python_out={tmp_path}",
            f"--grpc_python_out={tmp_path}",
            "modgate/v1/moderation.proto",
        ],
        check=True,
        timeout=60,
    )
    for package in (tmp_path / "modgate", tmp_path / "modgate" / "v1"):
        (package / "__init__.py").write_text("")
    client = textwrap.dedent(
        f"""
        import sys
        import grpc
        from modgate.v1 import moderation_pb2 as pb, moderation_pb2_grpc as pb_grpc
        assert pb.__file__.startswith({str(tmp_path)!r}), pb.__file__
        with grpc.insecure_channel({gateway.address!r}) as channel:
            verdict = pb_grpc.ModerationStub(channel).Moderate(
                pb.ModerateRequest(content_id="proto-only", title="hello"), timeout=10)
        print(verdict.content_id, verdict.policy_name, len(verdict.modalities))
        """
    )
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    result = subprocess.run(
        [sys.executable, "-c", client], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["proto-only", "default", "3"]
