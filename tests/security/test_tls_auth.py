"""TLS, mTLS and per-caller tokens on the real gateway process (certificates made at test time).

Tokens map to the policies a caller may use: missing or unknown -> UNAUTHENTICATED, a policy
(or a URI fetch) the caller may not use -> PERMISSION_DENIED. Health checks need no token.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway.auth import token_digest
from modgate.client import ModerationClient, ModerationError
from modgate.tools.stack import free_port
from modgate.v1 import moderation_pb2 as pb
from modgate.v1 import moderation_pb2_grpc as pb_grpc
from tests.gateway.gateway_process import REPO
from tests.security import hostile_media as hm
from tests.security.gateway_proc import BASE_ENV, ChannelCredentials, Gateway, running_gateway
from tests.security.pki import Pki

pytestmark = pytest.mark.timeout(120)

TOKENS = {
    "checkout": "tok-checkout-7f3a9c1e5b2d4f60",
    "kids-app": "tok-kids-2b8e6d0a4c1f3e59",
    "ops": "tok-ops-9d1c3b5a7e2f4d68",
}
UNAUTHENTICATED = grpc.StatusCode.UNAUTHENTICATED
DENIED = grpc.StatusCode.PERMISSION_DENIED


def tokens_file(directory: Path) -> Path:
    entries = {
        token_digest(TOKENS["checkout"]): {"caller": "checkout", "policies": ["default"]},
        token_digest(TOKENS["kids-app"]): {"caller": "kids-app", "policies": ["kids"]},
        token_digest(TOKENS["ops"]): {"caller": "ops", "policies": ["*"], "allow_uri_fetch": True},
    }
    path = directory / "tokens.yaml"
    path.write_text(yaml.safe_dump(entries), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def tls_gateway(pki: Pki, two_policies: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    directory = tmp_path_factory.mktemp("tls-gateway")
    env = {
        "MODGATE_GATEWAY_TLS_CERT_FILE": str(pki.server_cert),
        "MODGATE_GATEWAY_TLS_KEY_FILE": str(pki.server_key),
        "MODGATE_GATEWAY_AUTH_TOKENS_FILE": str(tokens_file(directory)),
        "MODGATE_POLICY_DIR": str(two_policies),
    }
    credentials = ChannelCredentials(root=pki.ca_cert.read_bytes())
    with running_gateway(directory, env, credentials=credentials, name="tls") as gateway:
        yield gateway


@pytest.fixture(scope="module")
def mtls_gateway(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    directory = tmp_path_factory.mktemp("mtls-gateway")
    env = {
        "MODGATE_GATEWAY_TLS_CERT_FILE": str(pki.server_cert),
        "MODGATE_GATEWAY_TLS_KEY_FILE": str(pki.server_key),
        "MODGATE_GATEWAY_TLS_CLIENT_CA_FILE": str(pki.ca_cert),
    }
    credentials = ChannelCredentials(
        root=pki.ca_cert.read_bytes(), cert=pki.client_cert.read_bytes(), key=pki.client_key.read_bytes()
    )
    with running_gateway(directory, env, credentials=credentials, name="mtls") as gateway:
        yield gateway


def call(
    gateway: Gateway,
    *,
    token: str | None = None,
    credentials: ChannelCredentials | None = None,
    **fields: object,
) -> pb.Verdict:
    metadata = (("authorization", f"Bearer {token}"),) if token else ()
    with gateway.channel(credentials) as channel:
        return pb_grpc.ModerationStub(channel).Moderate(
            pb.ModerateRequest(**fields),  # type: ignore[arg-type]
            metadata=metadata,
            timeout=10,
        )


def refused(action: Callable[[], object]) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as caught:
        action()
    error: grpc.Call = caught.value  # type: ignore[assignment]
    return error.code(), error.details() or ""


# --- TLS ---------------------------------------------------------------------------------------


def test_tls_serves_callers_that_trust_the_ca(tls_gateway: Gateway) -> None:
    verdict = call(tls_gateway, token=TOKENS["checkout"], title="over tls")
    assert verdict.policy_name == "default"


def test_plaintext_client_cannot_talk_to_a_tls_port(tls_gateway: Gateway) -> None:
    with grpc.insecure_channel(tls_gateway.address) as channel:
        code, _ = refused(
            lambda: pb_grpc.ModerationStub(channel).Moderate(pb.ModerateRequest(title="x"), timeout=5)
        )
    assert code == grpc.StatusCode.UNAVAILABLE


def test_a_client_that_trusts_another_ca_is_refused(tls_gateway: Gateway, pki: Pki) -> None:
    rogue = ChannelCredentials(root=pki.rogue_ca_cert.read_bytes())
    code, _ = refused(lambda: call(tls_gateway, token=TOKENS["checkout"], credentials=rogue, title="x"))
    assert code == grpc.StatusCode.UNAVAILABLE


def test_health_needs_no_token(tls_gateway: Gateway) -> None:
    with tls_gateway.channel() as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="modgate.v1.Moderation"), timeout=5
        )
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


# --- tokens ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("metadata", "fragment"),
    [
        ((), "missing bearer token"),
        ((("authorization", "Bearer tok-checkout-7f3a9c1e5b2d4f61"),), "unknown bearer token"),
        ((("authorization", "Bearer " + "x" * 5000),), "unknown bearer token"),
        ((("authorization", "Basic Y2hlY2tvdXQ6cHc="),), "Bearer <token>"),
        ((("authorization", "Bearer"),), "Bearer <token>"),
        ((("authorization", f"Bearer {TOKENS['checkout']}"), ("authorization", "Bearer x")), "exactly one"),
        ((("x-api-key", TOKENS["checkout"]),), "missing bearer token"),
    ],
)
def test_missing_or_unknown_tokens_are_unauthenticated(
    tls_gateway: Gateway, metadata: tuple[tuple[str, str], ...], fragment: str
) -> None:
    with tls_gateway.channel() as channel:
        code, details = refused(
            lambda: pb_grpc.ModerationStub(channel).Moderate(
                pb.ModerateRequest(title="x"), metadata=metadata, timeout=5
            )
        )
    assert code == UNAUTHENTICATED
    assert fragment in details, details


def test_streamed_requests_need_a_token_too(tls_gateway: Gateway) -> None:
    clip = hm.encode("mp4")
    messages = [pb.ModerateChunk(header=pb.ModerateRequest()), pb.ModerateChunk(data=clip)]
    with tls_gateway.channel() as channel:
        stub = pb_grpc.ModerationStub(channel)
        code, _ = refused(lambda: stub.ModerateStream(iter(messages), timeout=10))
        assert code == UNAUTHENTICATED
        metadata = (("authorization", f"Bearer {TOKENS['checkout']}"),)
        verdict = stub.ModerateStream(iter(messages), metadata=metadata, timeout=30)
    assert verdict.media.has_video


def test_tokens_map_to_the_policies_a_caller_may_use(tls_gateway: Gateway) -> None:
    # Each request carries a title: one with nothing to moderate is INVALID_ARGUMENT (issue 21).
    assert call(tls_gateway, token=TOKENS["checkout"], policy="default", title="x").policy_name == "default"
    assert call(tls_gateway, token=TOKENS["kids-app"], policy="kids", title="x").policy_name == "kids"
    for policy in ("default", "kids"):
        assert call(tls_gateway, token=TOKENS["ops"], policy=policy, title="x").policy_name == policy

    code, details = refused(lambda: call(tls_gateway, token=TOKENS["checkout"], policy="kids"))
    assert code == DENIED and "'checkout' may not use policy 'kids'" in details
    # An empty policy means the gateway's default, which kids-app may not use either.
    code, details = refused(lambda: call(tls_gateway, token=TOKENS["kids-app"], title="x"))
    assert code == DENIED and "policy 'default'" in details


def test_uri_fetch_is_a_per_caller_permission(tls_gateway: Gateway) -> None:
    uri = "https://cdn.example.com/clip.mp4"
    code, details = refused(lambda: call(tls_gateway, token=TOKENS["checkout"], media_uri=uri))
    assert code == DENIED and "may not have the gateway fetch" in details
    # ops may ask, but this gateway has fetching off altogether: still refused, for that reason.
    code, details = refused(lambda: call(tls_gateway, token=TOKENS["ops"], media_uri=uri))
    assert code == DENIED and "disabled" in details


def test_python_client_tls_and_token_options(tls_gateway: Gateway, pki: Pki) -> None:
    # The server certificate carries IP:127.0.0.1, so no name override is needed here.
    with ModerationClient(
        tls_gateway.address, tls=True, root_certificates=pki.ca_cert, token=TOKENS["checkout"]
    ) as client:
        assert client.moderate_text("hello there").policy_name == "default"
        with pytest.raises(ModerationError) as caught:
            client.moderate_text("hello", policy="kids")
        assert caught.value.code == DENIED and not caught.value.retryable
    with ModerationClient(tls_gateway.address, root_certificates=pki.ca_cert) as anonymous:
        with pytest.raises(ModerationError) as caught:
            anonymous.moderate_text("hello")
        assert caught.value.code == UNAUTHENTICATED


def test_tokens_never_reach_the_log(tls_gateway: Gateway) -> None:
    for token in TOKENS.values():
        with pytest.raises(grpc.RpcError):
            call(tls_gateway, token=token, policy="no-such-policy")
    log = tls_gateway.log()
    assert "caller authentication on: 3 token(s)" in log
    assert not [token for token in TOKENS.values() if token in log]


# --- mTLS -----------------------------------------------------------------------------------------


def test_mtls_accepts_a_client_certificate_from_the_client_ca(mtls_gateway: Gateway, pki: Pki) -> None:
    assert call(mtls_gateway, title="with a client certificate").policy_name == "default"
    with ModerationClient(
        mtls_gateway.address,
        root_certificates=pki.ca_cert,
        client_certificate=pki.client_cert,
        client_key=pki.client_key,
    ) as client:
        assert client.moderate_text("mtls via the python client").policy_name == "default"
    assert "authentication is OFF" in mtls_gateway.log()


@pytest.mark.parametrize("which", ["no client certificate", "certificate from another CA"])
def test_mtls_rejects_clients_without_a_trusted_certificate(
    mtls_gateway: Gateway, pki: Pki, which: str
) -> None:
    if which == "no client certificate":
        credentials = ChannelCredentials(root=pki.ca_cert.read_bytes())
    else:
        credentials = ChannelCredentials(
            root=pki.ca_cert.read_bytes(),
            cert=pki.rogue_client_cert.read_bytes(),
            key=pki.rogue_client_key.read_bytes(),
        )
    code, _ = refused(lambda: call(mtls_gateway, credentials=credentials, title="x"))
    assert code == grpc.StatusCode.UNAVAILABLE


# --- configuration mistakes stop the gateway at startup ---------------------------------------------


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"MODGATE_GATEWAY_TLS_CERT_FILE": "{server_cert}"}, "set both"),
        ({"MODGATE_GATEWAY_TLS_CLIENT_CA_FILE": "{ca}"}, "needs TLS"),
        (
            {"MODGATE_GATEWAY_TLS_CERT_FILE": "{tokens}", "MODGATE_GATEWAY_TLS_KEY_FILE": "{server_key}"},
            "not PEM",
        ),
        ({"MODGATE_GATEWAY_AUTH_TOKENS_FILE": "{plain_tokens}"}, "not a sha256 hex digest"),
        ({"MODGATE_GATEWAY_AUTH_TOKENS_FILE": "{unknown_policy_tokens}"}, "does not have"),
        ({"MODGATE_GATEWAY_AUTH_TOKENS_FILE": "{missing}"}, "does not exist"),
    ],
)
def test_bad_security_configuration_fails_the_start(
    pki: Pki, tmp_path: Path, env: dict[str, str], fragment: str
) -> None:
    plain = tmp_path / "plain.yaml"
    plain.write_text(yaml.safe_dump({"my-secret-token": {"caller": "x", "policies": ["default"]}}))
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text(yaml.safe_dump({token_digest("t"): {"caller": "x", "policies": ["nope"]}}))
    names = {
        "server_cert": pki.server_cert,
        "server_key": pki.server_key,
        "ca": pki.ca_cert,
        "tokens": plain,
        "plain_tokens": plain,
        "unknown_policy_tokens": unknown,
        "missing": tmp_path / "missing.yaml",
    }
    full_env = {
        **os.environ,
        **BASE_ENV,
        "MODGATE_GATEWAY_LISTEN": f"127.0.0.1:{free_port()}",
        **{k: v.format(**names) for k, v in env.items()},
    }
    result = subprocess.run(
        [sys.executable, "-m", "gateway"], cwd=REPO, env=full_env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2, result.stderr
    assert fragment in result.stderr, result.stderr
    assert "my-secret-token" not in result.stderr
