"""services.common: pin checks, the variant guard, the JSON error answer and the policy store."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from modgate.policy import DEFAULT_POLICY_DIR, Policy, PolicyError
from services.common import (
    PolicyStore,
    RequestError,
    UnknownPolicyError,
    check_variant,
    error_response,
    keep_policy,
    policy_ref,
    sha256_file,
    verify_pins,
    verify_sha256,
)


class PinError(RuntimeError):
    pass


def test_sha256_file_is_the_hex_digest(tmp_path: Path) -> None:
    path = tmp_path / "weights.bin"
    path.write_bytes(b"\x00weights" * 1000)
    assert sha256_file(path) == hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_different_file_names_itself_both_digests_and_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "model.bin"
    path.write_bytes(b"other weights")
    actual = sha256_file(path)
    expected = "A" * 64  # pins are compared case-insensitively
    with pytest.raises(PinError) as caught:
        verify_sha256(path, expected, what="speech weights file", remedy="reinstall it", error=PinError)
    assert str(caught.value) == (
        f"speech weights file {path} has sha256 {actual}, expected {'a' * 64}: reinstall it"
    )
    assert verify_sha256(path, actual.upper(), what="x", remedy="y", error=PinError) == actual


def test_a_missing_file_is_named_with_its_own_fix(tmp_path: Path) -> None:
    path = tmp_path / "tokenizer.json"
    with pytest.raises(PinError, match=rf"^text model file {path} is missing: restore it$"):
        verify_sha256(
            path, "0" * 64, what="text model file", remedy="r", error=PinError, missing_remedy="restore it"
        )
    with pytest.raises(PinError, match=r"is missing: reinstall$"):
        verify_sha256(path, "0" * 64, what="text model file", remedy="reinstall", error=PinError)


def test_verify_pins_stops_at_the_first_bad_file(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"a")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b").write_bytes(b"b")
    pins = {"a": sha256_file(tmp_path / "a"), "sub/b": sha256_file(tmp_path / "sub" / "b")}
    verify_pins(tmp_path, pins, what="file", remedy="fix", error=PinError)
    (tmp_path / "sub" / "b").write_bytes(b"tampered")
    with pytest.raises(PinError, match=r"sub/b has sha256 [0-9a-f]{64}, expected "):
        verify_pins(tmp_path, pins, what="file", remedy="fix", error=PinError)


def test_variant_guard_refuses_only_the_other_variant() -> None:
    for requested in (None, "", "stable"):
        check_variant(requested, "stable")
    with pytest.raises(RequestError) as caught:
        check_variant("canary", "stable")
    error = caught.value
    assert (error.status, error.field) == (409, "variant")
    assert error.message == (
        "this replica serves variant 'stable', not 'canary': "
        "check the gateway's upstream URL for that variant"
    )


def test_error_response_is_the_json_error_answer() -> None:
    response = error_response(RequestError(413, "items", "too many items: split the request"))
    assert response.status_code == 413
    assert json.loads(response.body) == {"error": "too many items: split the request", "field": "items"}


# --- the policy store ---------------------------------------------------------------------------


def _policy_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "policies"
    directory.mkdir()
    shutil.copy(DEFAULT_POLICY_DIR / "default.yaml", directory / "default.yaml")
    return directory


def _with_version(source: Path, target: Path, version: str, name: str | None = None) -> None:
    text = source.read_text(encoding="utf-8")
    lines = [f'version: "{version}"' if line.startswith("version:") else line for line in text.splitlines()]
    if name is not None:
        lines = [f"name: {name}" if line.startswith("name:") else line for line in lines]
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_store_builds_once_per_digest_and_keeps_the_last_good_policies(tmp_path: Path) -> None:
    directory = _policy_dir(tmp_path)
    builds: list[str] = []

    def build(policy: Policy) -> tuple[str, str]:
        builds.append(policy.version)
        return (policy.name, policy.version)

    store = PolicyStore(directory, build, reload_s=0.0)
    first = store.get("default")
    assert store.get("default") is first and len(builds) == 1  # unchanged files: nothing rebuilt

    _with_version(directory / "default.yaml", directory / "default.yaml", "test-2")
    assert store.get("default") == ("default", "test-2")
    assert store.all() == [("default", "test-2")] and len(builds) == 2 and store.last_error is None

    (directory / "default.yaml").write_text("categories: [unclosed", encoding="utf-8")
    assert store.get("default") == ("default", "test-2")  # a broken edit keeps the last good one
    assert store.last_error is not None and "default.yaml" in store.last_error
    assert len(builds) == 2


def test_store_checks_the_files_at_once_for_an_unknown_name_or_another_version(tmp_path: Path) -> None:
    directory = _policy_dir(tmp_path)
    store = PolicyStore(directory, keep_policy, reload_s=3600)
    held = store.get("default")
    _with_version(directory / "default.yaml", directory / "default.yaml", "test-3")
    assert store.get("default") is held  # periodic check not due yet
    assert store.get("default", "test-3").version == "test-3"  # the caller's version forces it

    with pytest.raises(UnknownPolicyError) as caught:
        store.get("strict")
    assert str(caught.value) == (
        f"policy 'strict' is not loaded (loaded: default); add strict.yaml to {directory} "
        "(MODGATE_POLICY_DIR) or name a loaded policy"
    )
    _with_version(directory / "default.yaml", directory / "strict.yaml", "1", name="strict")
    assert store.get("strict").name == "strict"  # a new file is found on first ask
    assert policy_ref(store.get("strict")).model_dump() == {
        "name": "strict",
        "version": "1",
        "digest": store.get("strict").digest,
    }


def test_store_refuses_a_broken_directory_at_start(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match=r"no \*\.yaml policy files"):
        PolicyStore(tmp_path, keep_policy, reload_s=0)
