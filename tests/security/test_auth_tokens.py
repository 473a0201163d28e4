"""The tokens file and the Authenticator, in process: parsing, metadata forms, permissions, and
the `python -m gateway.auth` helper that makes entries."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grpc
import pytest
import yaml

from gateway.auth import Authenticator, Caller, TokensFileError, load_tokens, parse_tokens, token_digest
from gateway.errors import PermissionDenied, Unauthenticated
from tests.gateway.gateway_process import REPO

POLICIES = ("default", "kids")


def authenticator(**tokens: dict[str, object]) -> Authenticator:
    return Authenticator(
        parse_tokens({token_digest(t): e for t, e in tokens.items()}, source="t", policies=POLICIES)
    )


def test_digests_are_sha256_hex() -> None:
    assert token_digest("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (None, "must map"),
        ({}, "must map"),
        (["a"], "must map"),
        ({"plain-token": {"caller": "x", "policies": ["default"]}}, "not a sha256 hex digest"),
        ({"a" * 63: {"caller": "x", "policies": ["default"]}}, "not a sha256 hex digest"),
        ({"a" * 64: {"policies": ["default"]}}, "caller"),
        ({"a" * 64: {"caller": "x", "policies": []}}, "policies"),
        ({"a" * 64: {"caller": "x", "policies": ["default"], "admin": True}}, "admin"),
        ({"a" * 64: {"caller": "x y", "policies": ["default"]}}, "caller"),
        ({"a" * 64: {"caller": "x", "policies": ["default", "adults"]}}, "adults"),
    ],
)
def test_bad_tokens_files_are_refused_with_a_reason(data: object, fragment: str) -> None:
    with pytest.raises(TokensFileError, match=fragment):
        parse_tokens(data, source="tokens.yaml", policies=POLICIES)


def test_digests_are_accepted_in_upper_case_and_load_from_yaml(tmp_path: Path) -> None:
    path = tmp_path / "tokens.yaml"
    path.write_text(yaml.safe_dump({token_digest("t1").upper(): {"caller": "a", "policies": ["*"]}}))
    callers = load_tokens(path, POLICIES)
    assert list(callers.values()) == [Caller("a", frozenset({"*"}), False)]
    with pytest.raises(TokensFileError, match="cannot be read"):
        (tmp_path / "broken.yaml").write_text("a: [")
        load_tokens(tmp_path / "broken.yaml", POLICIES)


@pytest.mark.parametrize(
    "metadata",
    [
        [("authorization", "Bearer t1")],
        [("authorization", "bearer t1")],
        [("authorization", "  Bearer   t1  ")],
        [("Authorization", "Bearer t1")],
        [("authorization", b"Bearer t1")],
        [("x-other", "1"), ("authorization", "Bearer t1")],
    ],
)
def test_metadata_forms_that_authenticate(metadata: list[tuple[str, str | bytes]]) -> None:
    auth = authenticator(
        t1={"caller": "one", "policies": ["default"]}, t2={"caller": "two", "policies": ["kids"]}
    )
    caller = auth.authenticate(metadata)
    assert caller is not None and caller.name == "one"


@pytest.mark.parametrize(
    "metadata",
    [
        None,
        [],
        [("authorization", "Bearer t3")],
        [("authorization", "Bearer T1")],
        [("authorization", "Bearer t1x")],
        [("authorization", "Token t1")],
        [("authorization", "t1")],
        [("authorization", "Bearer t1"), ("authorization", "Bearer t1")],
        [("authorization", "Bearer " + "t" * 2000)],
    ],
)
def test_metadata_that_does_not_authenticate(metadata: list[tuple[str, str]] | None) -> None:
    auth = authenticator(t1={"caller": "one", "policies": ["default"]})
    with pytest.raises(Unauthenticated) as caught:
        auth.authenticate(metadata)
    assert caught.value.code == grpc.StatusCode.UNAUTHENTICATED


def test_permissions() -> None:
    auth = authenticator(
        t1={"caller": "one", "policies": ["default"]},
        t2={"caller": "all", "policies": ["*"], "allow_uri_fetch": True},
    )
    one = auth.authenticate([("authorization", "Bearer t1")])
    every = auth.authenticate([("authorization", "Bearer t2")])
    auth.authorize(one, "default", "file:///media/a.mp4")
    auth.authorize(every, "kids", "https://cdn.example.com/a.mp4")
    with pytest.raises(PermissionDenied, match="may not use policy 'kids'"):
        auth.authorize(one, "kids")
    with pytest.raises(PermissionDenied, match="fetch"):
        auth.authorize(one, "default", "HTTPS://cdn.example.com/a.mp4")


def test_auth_off_lets_everyone_through(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING", logger="gateway.auth"):
        auth = Authenticator.from_file(None, POLICIES)
    assert not auth.enabled
    assert "authentication is OFF" in caplog.text
    assert auth.authenticate([]) is None
    auth.authorize(None, "kids", "https://x/a.mp4")


def test_cli_makes_an_entry_whose_token_authenticates(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway.auth",
            "new",
            "--caller",
            "shop",
            "--policy",
            "kids",
            "--allow-uri-fetch",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    token = result.stderr.strip().splitlines()[-1].removeprefix("# ").strip()
    assert token not in result.stdout  # stdout (the file entry) holds only the digest
    path = tmp_path / "tokens.yaml"
    path.write_text(result.stdout)
    auth = Authenticator(load_tokens(path, POLICIES))
    assert auth.authenticate([("authorization", f"Bearer {token}")]) == Caller(
        "shop", frozenset({"kids"}), True
    )

    digest = subprocess.run(
        [sys.executable, "-m", "gateway.auth", "digest"],
        cwd=REPO,
        input=token,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert digest.stdout.strip() in result.stdout
