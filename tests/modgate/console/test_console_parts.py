"""The console's pieces on their own: the users CLI and tokens file, session cookies, text
highlighting and timeline positions, the `modgate up` process spec and `modgate console`."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from modgate.console.items import highlight, timeline_marks
from modgate.console.sessions import SessionCodec, same_origin
from modgate.console.users import Role, TokensFileError, UserDirectory, parse_tokens
from modgate.tools.cli import build_parser
from modgate.tools.stack import up
from modgate.tools.stack.process import free_port
from modgate.tools.stack.specs import StackConfig, stack_specs
from modgate.v1 import moderation_pb2 as pb
from tests.console_process import REPO


def test_users_cli_prints_a_token_whose_entry_authenticates(tmp_path: Path) -> None:
    tokens_file = tmp_path / "tokens.yaml"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "modgate.console.users",
            "new",
            "--user",
            "alice",
            "--role",
            "admin",
            "--file",
            str(tokens_file),
        ],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        check=True,
    )
    token = result.stdout.splitlines()[0].rsplit(" ", 1)[1]
    directory = UserDirectory(tokens_file)
    user = directory.authenticate(token)
    assert user is not None and (user.name, user.role) == ("alice", Role.ADMIN)
    assert token not in tokens_file.read_text()  # only its digest is stored
    assert directory.authenticate(token + "x") is None and directory.authenticate("") is None
    tokens_file.write_text("")  # removing the entry ends it (the file is re-read on change)
    assert directory.authenticate(token) is None


def test_tokens_file_errors_name_the_problem_without_echoing_tokens() -> None:
    with pytest.raises(TokensFileError, match="not a sha256 hex digest") as raised:
        parse_tokens({"my-secret-token": {"user": "a", "role": "reviewer"}}, source="t.yaml")
    assert "my-secret-token" not in str(raised.value)
    with pytest.raises(TokensFileError, match="role"):
        parse_tokens({"a" * 64: {"user": "a", "role": "superuser"}}, source="t.yaml")


def test_session_cookies_are_signed_and_expire() -> None:
    codec = SessionCodec("secret", ttl_s=60)
    session = codec.new("d" * 64).with_revealed("v" * 32, 3)
    cookie = codec.encode(session)
    assert codec.decode(cookie) == session
    body, _, signature = cookie.rpartition(".")
    assert codec.decode(body + "." + "0" * len(signature)) is None
    assert SessionCodec("other", ttl_s=60).decode(cookie) is None
    assert codec.decode(cookie, now=time.time() + 61) is None
    assert session.revealed_frames("v" * 32) == {3} and session.revealed_frames("w" * 32) == set()


def test_same_origin_rules() -> None:
    me = "http://127.0.0.1:8080"
    assert same_origin(me, None, None, me)
    assert not same_origin("http://127.0.0.1:8081", "same-origin", None, me)  # Origin wins
    assert same_origin("null", "same-origin", None, me)
    assert not same_origin("null", "same-site", None, me)
    assert same_origin(None, None, me + "/items/x", me)
    assert not same_origin(None, None, None, me)


def test_highlight_merges_and_clips_spans() -> None:
    parts = highlight("abcdefghij", [(2, 4), (3, 6), (8, 40), (-3, -1)])
    assert [(p.text, p.marked) for p in parts] == [("ab", False), ("cdef", True), ("gh", False), ("ij", True)]
    assert [(p.text, p.marked) for p in highlight("abc", [])] == [("abc", False)]


def test_timeline_marks_are_clipped_and_an_instant_stays_visible() -> None:
    evidence = [
        pb.Evidence(modality=pb.MODALITY_VISUAL, start_ms=9_990, end_ms=9_990, category="x"),
        pb.Evidence(modality=pb.MODALITY_TEXT, category="title"),  # untimed: no mark
        pb.Evidence(modality=pb.MODALITY_AUDIO, start_ms=5_000, end_ms=20_000, category="y"),
    ]
    marks = timeline_marks(evidence, 10_000)
    assert [(m.modality, m.x, m.width) for m in marks] == [("VISUAL", 996.0, 4.0), ("AUDIO", 500.0, 500.0)]


def test_modgate_up_runs_the_console_unless_told_not_to(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    up.add_arguments(parser)
    config = up.config_from_args(parser.parse_args([]))
    assert config.console_port == 8080
    assert up.config_from_args(parser.parse_args(["--no-console"])).console_port is None
    assert "console" not in [s.name for s in stack_specs(StackConfig(home=tmp_path))]
    assert "console" in build_parser().format_help()

    port = free_port()
    [spec] = [s for s in stack_specs(StackConfig(home=tmp_path, console_port=port)) if s.name == "console"]
    assert spec.env["MODGATE_CONSOLE_HOST"] == "127.0.0.1"
    assert spec.env["MODGATE_CONSOLE_TRACE_DB"] == str(tmp_path / "traces.db")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODGATE_STORE_", "MODGATE_CONSOLE_"))}
    process = subprocess.Popen(
        spec.argv,
        cwd=REPO,
        env={**env, **spec.env, "PYTHONPATH": str(REPO)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while not spec.ready() and time.monotonic() < deadline:
            assert process.poll() is None, "the console exited"
            time.sleep(0.2)
        assert spec.ready()
        assert (tmp_path / "verdicts.db").exists()  # the store under MODGATE_HOME, as the gateway's
    finally:
        process.terminate()
        process.wait(timeout=10)
