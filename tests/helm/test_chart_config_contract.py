"""The chart's env vars are the ones the processes read: every MODGATE_* name the chart renders is a
field of that process kind's settings classes (pydantic-settings ignores unknown names silently,
so a typo would otherwise go unnoticed), and the rendered values parse into those settings."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest
from pydantic_settings import BaseSettings

from tests.helm.chart import CHART, REPO, containers, env_of, matrix, named, of_kind, pod_labels, render_case

PREFIXES = {
    "gateway": "MODGATE_GATEWAY_",
    "speech": "MODGATE_SPEECH_",
    "vision": "MODGATE_VISION_",
    "text": "MODGATE_TEXT_",
    "console": "MODGATE_CONSOLE_",
}
PACKAGES = {
    "gateway": "gateway",
    "speech": "services/speech",
    "vision": "services/vision",
    "text": "services/text",
    "console": "modgate/console",
}
# Read outside the settings classes, by modgate/telemetry/config.py (the variant becomes a span attribute).
SHARED_ELSEWHERE = {"MODGATE_TRACING_ENABLED", "MODGATE_ENVIRONMENT", "MODGATE_VARIANT"}
# Shared by convention and mounted into every pod (one policy ConfigMap for the release); a process
# that scores nothing against the policy (speech: transcripts are scored by text) ignores it.
SHARED_EVERYWHERE = {"MODGATE_POLICY_DIR"}
# The bank directory: modgate/banks/config.py BankSettings, embedded in the settings of the processes
# that match against banks (GatewayConfig.banks, VisionSettings.banks).
BANK_READERS = {"gateway", "vision"}
# The verdict store: modgate/store/config.py StoreSettings, embedded in GatewayConfig. With SQLite the
# chart sets MODGATE_HOME (the store's default file is $MODGATE_HOME/verdicts.db), read by that module.
STORE_READERS = {"gateway", "console"}
STORE_HOME = "MODGATE_HOME"


def settings_classes(kind: str) -> list[type[BaseSettings]]:
    """Every BaseSettings subclass defined in the process kind's package."""
    classes: list[type[BaseSettings]] = []
    root = REPO / PACKAGES[kind]
    for path in sorted(root.rglob("*.py")):
        if "BaseSettings" not in path.read_text(encoding="utf-8"):
            continue
        module = importlib.import_module(".".join(path.relative_to(REPO).with_suffix("").parts))
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, BaseSettings)
                and value is not BaseSettings
                and value.__module__ == module.__name__
            ):
                classes.append(value)
    assert classes, f"no settings class found under {PACKAGES[kind]}"
    return classes


def env_names(cls: type[BaseSettings]) -> set[str]:
    prefix = str(cls.model_config.get("env_prefix", ""))
    names: set[str] = set()
    for name, field in cls.model_fields.items():
        alias = field.validation_alias
        if alias is None:
            names.add(f"{prefix}{name}".upper())
        elif isinstance(alias, str):
            names.add(alias.upper())
        else:  # AliasChoices
            names |= {choice.upper() for choice in alias.choices if isinstance(choice, str)}
    return names


def known_env(kind: str) -> set[str]:
    names = set().union(*(env_names(cls) for cls in settings_classes(kind)))
    if kind in BANK_READERS:
        from modgate.banks.config import BankSettings

        names |= env_names(BankSettings)
    if kind in STORE_READERS:
        from modgate.store.config import StoreSettings

        names |= env_names(StoreSettings) | {STORE_HOME}
    return names


def test_bank_readers_embed_the_bank_settings() -> None:
    from gateway.config import GatewayConfig
    from modgate.banks.config import BankSettings
    from services.vision.config import VisionSettings

    assert env_names(BankSettings) == {"MODGATE_BANK_DIR", "MODGATE_BANK_RELOAD_INTERVAL_S"}
    for cls in (GatewayConfig, VisionSettings):
        assert cls.model_fields["banks"].annotation is BankSettings, cls


def test_store_readers_embed_the_store_settings() -> None:
    from gateway.config import GatewayConfig
    from modgate.store.config import StoreSettings

    chart_sets = {
        "MODGATE_STORE_ENABLED",
        "MODGATE_STORE_URL",
        "MODGATE_STORE_RETENTION_DAYS",
        "MODGATE_STORE_SPOOL_DIR",
        "MODGATE_STORE_SQLITE_SYNCHRONOUS",
        "MODGATE_STORE_POOL_SIZE",
    }
    assert chart_sets <= env_names(StoreSettings)
    field = GatewayConfig.model_fields.get("store")
    if field is None:
        pytest.skip(
            "GatewayConfig does not embed StoreSettings yet (the verdict store's gateway integration)"
        )
    assert field.annotation is StoreSettings


@pytest.mark.parametrize("case", sorted(matrix()))
def test_every_modgate_env_var_the_chart_sets_is_read_by_its_process(case: str) -> None:
    known = {kind: known_env(kind) for kind in PREFIXES}
    for deployment in of_kind(render_case(case), "Deployment"):
        kind = pod_labels(deployment)["app.kubernetes.io/component"]
        readable = known[kind] | SHARED_ELSEWHERE | SHARED_EVERYWHERE
        for container in containers(deployment, init=False):
            for name in env_of(container):
                if name.startswith("MODGATE_"):
                    assert name in readable, f"{deployment['metadata']['name']}: nothing reads {name}"


def test_shared_names_are_read_where_claimed() -> None:
    telemetry = (REPO / "modgate" / "telemetry" / "config.py").read_text()
    for name in SHARED_ELSEWHERE:
        assert f'"{name}"' in telemetry, name
    for kind in ("speech", "vision", "text"):
        assert {"MODGATE_DEVICE", "MODGATE_VARIANT"} <= known_env(kind), kind
    for kind in ("gateway", "vision", "text"):
        assert "MODGATE_POLICY_DIR" in known_env(kind), kind
    store_config = (REPO / "modgate" / "store" / "config.py").read_text()
    assert f'"{STORE_HOME}"' in store_config


def test_schema_settings_keys_are_real_settings() -> None:
    """Every key values.schema.json accepts under <component>.config / gateway.limits / store.config
    is a real setting of that process (camelCase -> MODGATE_<KIND>_<SNAKE_CASE>)."""
    import re

    schema = json.loads((CHART / "values.schema.json").read_text())
    defs = schema["$defs"]
    keys = {
        "gateway": set(defs["gatewayConfig"]["properties"])
        | set(schema["properties"]["gateway"]["properties"]["limits"]["properties"]),
        "speech": set(defs["speechConfig"]["properties"]),
        "vision": set(defs["visionConfig"]["properties"]),
        "text": set(defs["textConfig"]["properties"]),
        "store": set(defs["storeConfig"]["properties"]),
    }
    prefixes = {**PREFIXES, "store": "MODGATE_STORE_"}
    for kind, names in keys.items():
        known = known_env("gateway" if kind == "store" else kind)
        for key in names:
            env = prefixes[kind] + re.sub(r"(?<!^)(?=[A-Z])", "_", key).upper()
            assert env in known, f"values.schema.json offers {kind} key {key!r} but nothing reads {env}"


def process_env(deployment_name: str, case: str) -> dict[str, str]:
    deployment = named(render_case(case), "Deployment", deployment_name)
    (container,) = containers(deployment, init=False)
    env = {k: v for k, v in env_of(container).items() if v is not None}
    return env


def test_rendered_gateway_env_parses_into_the_gateway_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from gateway.config import GatewayConfig
    from gateway.upstreams.config import OrchestrationSettings

    for name, value in process_env("rel-gateway", "full").items():
        monkeypatch.setenv(name, value)
    config = GatewayConfig()
    assert config.listen == "0.0.0.0:50051"
    assert (config.max_unary_bytes, config.max_stream_bytes) == (33554432, 268435456)
    assert (config.max_duration_s, config.max_frames) == (90.5, 48)
    assert config.uri_allowlist == ["media.example.com", "cdn.example.com"]
    assert config.media_root == Path("/media")
    assert config.policy_dir == Path("/etc/modgate/policies")
    orchestration = OrchestrationSettings()
    if hasattr(config, "orchestration"):  # nested in GatewayConfig since the orchestrator landed
        assert config.orchestration == orchestration
    assert orchestration.metrics_port == 9464
    assert orchestration.max_inflight == 16
    assert orchestration.upstreams_file == Path("/etc/modgate/gateway/upstreams.yaml")
    assert (orchestration.health_check_interval_s, orchestration.health_unhealthy_threshold) == (2.0, 2)


def test_rendered_service_env_parses_into_the_service_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from services.speech.config import SpeechSettings
    from services.text.config import TextSettings
    from services.vision.config import VisionSettings

    cases = [
        ("rel-speech-canary", "speech-shadow", SpeechSettings),
        ("rel-vision-canary", "vision-canary", VisionSettings),
        ("rel-text", "full", TextSettings),
        ("rel-speech", "gpu", SpeechSettings),
    ]
    parsed = {}
    for deployment, case, cls in cases:
        with monkeypatch.context() as patch:
            for name, value in process_env(deployment, case).items():
                patch.setenv(name, value)
            parsed[deployment, case] = cls()
    speech = parsed["rel-speech-canary", "speech-shadow"]
    assert (speech.engine, speech.model, speech.variant) == ("faster-whisper", "base", "canary")
    assert speech.model_path == Path("/models/speech/whisper-base")
    vision = parsed["rel-vision-canary", "vision-canary"]
    assert vision.checkpoint == Path("/models/vision/ViT-B-32-modgate.safetensors")
    assert (vision.allow_uncalibrated, vision.threads, vision.variant) == (True, 4, "canary")
    text = parsed["rel-text", "full"]
    assert (text.model_path, text.threads, text.device) == (Path("/models/text"), 2, "cpu")
    gpu_speech = parsed["rel-speech", "gpu"]
    assert (gpu_speech.device, gpu_speech.compute_type) == ("cuda", "float16")
