"""GatewayConfig: env parsing (MODGATE_GATEWAY_*, MODGATE_POLICY_DIR) and per-request caps."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from gateway.config import GatewayConfig
from gateway.media.limits import FrameStrategy, MiB

pytestmark = pytest.mark.timeout(30)


def test_defaults_match_the_documented_limits() -> None:
    config = GatewayConfig(_env_file=None)  # type: ignore[call-arg]
    assert config.listen == "127.0.0.1:50051"
    assert (config.max_unary_bytes, config.max_stream_bytes) == (32 * MiB, 256 * MiB)
    assert config.max_message_bytes == 33 * MiB
    assert config.media_root is None and config.uri_fetch_enabled is False


def test_env_vars_configure_the_gateway(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MODGATE_GATEWAY_LISTEN", "127.0.0.1:6000")
    monkeypatch.setenv("MODGATE_GATEWAY_MAX_DURATION_S", "30")
    monkeypatch.setenv("MODGATE_GATEWAY_FRAME_STRATEGY", "keyframes")
    monkeypatch.setenv("MODGATE_GATEWAY_URI_ALLOWLIST", "cdn.example.com, Media.Example.org")
    monkeypatch.setenv("MODGATE_GATEWAY_MEDIA_ROOT", str(tmp_path))
    monkeypatch.setenv("MODGATE_POLICY_DIR", str(tmp_path))

    config = GatewayConfig()
    assert config.listen == "127.0.0.1:6000"
    assert config.frame_strategy is FrameStrategy.KEYFRAMES
    assert config.uri_allowlist == ["cdn.example.com", "media.example.org"]
    assert config.media_root == tmp_path and config.policy_dir == tmp_path
    limits = config.media_limits(max_bytes=1234)
    assert (limits.max_bytes, limits.max_duration_s) == (1234, 30.0)


def test_bad_env_values_are_rejected_naming_the_field(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODGATE_GATEWAY_MAX_FRAMES", "0")
    with pytest.raises(ValidationError, match="max_frames"):
        GatewayConfig()


def test_request_options_are_capped_by_the_gateway() -> None:
    config = GatewayConfig(max_sample_fps=5.0, max_frames=32, frame_sample_fps=1.0)
    default = config.split_options()
    assert (default.frame_sample_fps, default.max_frames) == (1.0, 32)
    capped = config.split_options(fps=50.0, max_frames=1000)
    assert (capped.frame_sample_fps, capped.max_frames) == (5.0, 32)
    lowered = config.split_options(fps=0.5, max_frames=4, video=False)
    assert (lowered.frame_sample_fps, lowered.max_frames, lowered.video) == (0.5, 4, False)
