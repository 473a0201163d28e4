"""`modgate up` gives each model service a share of the cores instead of one thread per core each."""

from __future__ import annotations

from pathlib import Path

import pytest

from modgate.tools.stack import Stack, StackConfig, thread_plan, usable_cores

THREAD_KEYS = {
    "speech": "MODGATE_SPEECH_THREADS",
    "vision": "MODGATE_VISION_THREADS",
    "text": "MODGATE_TEXT_THREADS",
}


def totals(plan: dict[str, dict[str, str]]) -> dict[str, int]:
    return {service: int(plan[service][key]) for service, key in THREAD_KEYS.items()}


@pytest.mark.parametrize("cores", [1, 2, 3, 4, 8, 16, 64])
def test_every_service_gets_at_least_one_thread_and_the_cores_are_shared(cores: int) -> None:
    threads = totals(thread_plan(cores))
    assert min(threads.values()) >= 1
    if cores >= 4:
        assert sum(threads.values()) <= cores
    # OpenMP pools (torch, CTranslate2) follow the service's own setting.
    for service, key in THREAD_KEYS.items():
        assert thread_plan(cores)[service]["OMP_NUM_THREADS"] == thread_plan(cores)[service][key]


def test_two_cores_favour_speech_the_longest_stage() -> None:
    assert totals(thread_plan(2)) == {"speech": 2, "vision": 1, "text": 1}


def test_speech_admits_what_the_gateway_admits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MODGATE_SPEECH_MAX_CONCURRENCY", raising=False)
    monkeypatch.delenv("MODGATE_GATEWAY_MAX_CONCURRENT_REQUESTS", raising=False)
    assert thread_plan(2)["speech"]["MODGATE_SPEECH_MAX_CONCURRENCY"] == "16"
    monkeypatch.setenv("MODGATE_GATEWAY_MAX_CONCURRENT_REQUESTS", "40")
    assert thread_plan(2)["speech"]["MODGATE_SPEECH_MAX_CONCURRENCY"] == "40"


def test_settings_the_user_exported_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODGATE_VISION_THREADS", "3")
    plan = thread_plan(2)
    assert "MODGATE_VISION_THREADS" not in plan["vision"]
    assert plan["speech"]["MODGATE_SPEECH_THREADS"] == "2"


def test_stack_processes_carry_the_plan_and_explicit_env_overrides_it(tmp_path: Path) -> None:
    config = StackConfig(home=tmp_path, env={"speech": {"MODGATE_SPEECH_THREADS": "1"}})
    specs = {name: proc.spec for name, proc in Stack(config).processes.items()}
    expected = thread_plan(usable_cores())
    assert specs["vision"].env["MODGATE_VISION_THREADS"] == expected["vision"]["MODGATE_VISION_THREADS"]
    assert specs["text"].env["OMP_NUM_THREADS"] == expected["text"]["OMP_NUM_THREADS"]
    assert specs["speech"].env["MODGATE_SPEECH_THREADS"] == "1"
    assert "MODGATE_SPEECH_THREADS" not in specs["gateway"].env
