"""The committed protobuf code in modgate/v1/ is exactly what the proto generates (`make proto`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PROTO = "modgate/v1/moderation.proto"
GENERATED = ("moderation_pb2.py", "moderation_pb2.pyi", "moderation_pb2_grpc.py")


@pytest.mark.timeout(120)
def test_generated_code_is_fresh(tmp_path: Path) -> None:
    # The same command as the Makefile's `proto` target, into an empty directory.
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            "-I",
            str(REPO / "proto"),
            f"--python_out={tmp_path}",
            f"--pyi_out={tmp_path}",
            f"--grpc_python_out={tmp_path}",
            str(REPO / "proto" / PROTO),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    stale = [
        name
        for name in GENERATED
        if (tmp_path / "modgate" / "v1" / name).read_bytes() != (REPO / "modgate" / "v1" / name).read_bytes()
    ]
    assert not stale, f"modgate/v1/{', '.join(stale)} differ from {PROTO}: run `make proto` and commit"
