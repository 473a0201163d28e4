"""The text service as a real process: `bentoml serve services.text.service:Text` over HTTP."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import yaml

from modgate.policy import DEFAULT_POLICY_DIR, load_policy
from modgate.wire import TextResult

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[3]
STARTUP_TIMEOUT_S = 180.0
MAX_ITEMS = 8
MAX_CHARS = 5_000


@pytest.fixture(scope="module")
def policy_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("text-policies")
    shutil.copy(DEFAULT_POLICY_DIR / "default.yaml", directory / "default.yaml")
    return directory


@pytest.fixture(scope="module")
def service_url(
    tmp_path_factory: pytest.TempPathFactory, free_port: Callable[[], int], policy_dir: Path
) -> Iterator[str]:
    port = free_port()
    workdir = tmp_path_factory.mktemp("text-service")
    log_path = workdir / "serve.log"
    env = {
        **os.environ,
        "BENTOML_HOME": str(workdir / "bentoml"),
        "OTEL_SDK_DISABLED": "true",  # no exporter chatter towards whatever listens on :4318
        "MODGATE_VARIANT": "canary",
        "MODGATE_DEVICE": "cpu",
        "MODGATE_POLICY_DIR": str(policy_dir),
        "MODGATE_TEXT_MAX_ITEMS": str(MAX_ITEMS),
        "MODGATE_TEXT_MAX_CHARS": str(MAX_CHARS),
        "MODGATE_TEXT_THREADS": "2",
        "MODGATE_TEXT_POLICY_RELOAD_S": "0.2",
    }
    env.pop("MODGATE_TEXT_MODEL_PATH", None)
    bentoml = str(Path(sys.executable).with_name("bentoml"))
    command = [bentoml, "serve", "services.text.service:Text", "--host", "127.0.0.1", "--port", str(port)]
    with log_path.open("wb") as log:
        # Own process group: teardown stops BentoML's worker processes with it.
        proc = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"bentoml serve exited with {proc.returncode}:\n{log_path.read_text()[-4000:]}")
            try:
                if httpx.get(f"{url}/readyz", timeout=2.0).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(
                    f"text service not ready after {STARTUP_TIMEOUT_S} s:\n{log_path.read_text()[-4000:]}"
                )
            time.sleep(0.5)
        yield url
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    with contextlib.suppress(ProcessLookupError):  # workers left behind by an unclean exit
        os.killpg(proc.pid, signal.SIGKILL)


def moderate(url: str, body: object, **kwargs: object) -> httpx.Response:
    return httpx.post(f"{url}/moderate", json=body, timeout=120.0, **kwargs)  # type: ignore[arg-type]


def item(id_: str, text: str, source: str = "caption", **extra: object) -> dict[str, object]:
    return {"id": id_, "text": text, "source": source, **extra}


def test_health_endpoints(service_url: str) -> None:
    assert httpx.get(f"{service_url}/livez").status_code == 200
    assert httpx.get(f"{service_url}/readyz").status_code == 200


def test_moderates_a_batch_over_http(service_url: str) -> None:
    threat = "i know where u live, f.u.c.k.i.n.g loser, see you tonight 🔪"
    body = {
        "policy": "default",
        "items": [
            item("t", threat, "title"),
            item(
                "seg",
                "This movie killed it, I could kill for a coffee",
                "transcript",
                start_ms=3200,
                end_ms=5900,
            ),
            item("empty", "", "hashtag"),
        ],
    }
    response = moderate(service_url, body)
    assert response.status_code == 200, response.text
    result = TextResult.model_validate_json(response.content)
    assert [i.id for i in result.items] == ["t", "seg", "empty"]
    first, idiom, empty = result.items

    assert first.scores["violence"] >= 0.5
    profanity = [m for m in first.matches if m.signal == "lexicon"]
    assert [threat[m.span_start : m.span_end] for m in profanity] == ["f.u.c.k.i.n.g"]
    assert profanity[0].category == "harassment" and profanity[0].score == 0.6
    # The default policy scores by exemplars (the trained scorer is opt-in: policy "multilingual").
    [semantic] = [m for m in first.matches if m.signal == "semantic" and m.category == "violence"]
    assert semantic.evidence.startswith("nearest exemplar: ")

    assert all(v < 0.5 for v in idiom.scores.values()), idiom.scores
    assert all(v == 0 for v in empty.scores.values()) and "empty text: nothing to score" in empty.notes

    assert result.model.name == "usem3-multilingual-v3+all-MiniLM-L6-v2" and result.model.variant == "canary"
    assert result.model.calibrated and result.model.version == "0db566fd0af8+53aa51172d14"
    assert load_policy(DEFAULT_POLICY_DIR / "default.yaml").text_scorer is None
    assert result.policy.name == "default" and len(result.policy.digest) == 16
    assert {"prepare", "embed", "score", "total"} <= result.timings_ms.keys()


def test_too_many_items_is_413(service_url: str) -> None:
    response = moderate(service_url, {"items": [item(str(i), "hello") for i in range(MAX_ITEMS + 1)]})
    assert response.status_code == 413
    assert response.json()["field"] == "items"
    assert "MODGATE_TEXT_MAX_ITEMS" in response.json()["error"]


def test_unknown_policy_is_404_and_wrong_variant_is_409(service_url: str) -> None:
    response = moderate(service_url, {"policy": "strict", "items": [item("a", "hi")]})
    assert response.status_code == 404
    assert response.json() == {"error": response.json()["error"], "field": "policy"}
    assert "loaded: default" in response.json()["error"]
    response = moderate(service_url, {"variant": "stable", "items": [item("a", "hi")]})
    assert response.status_code == 409 and response.json()["field"] == "variant"
    assert moderate(service_url, {"variant": "canary", "items": [item("a", "hi")]}).status_code == 200


def test_invalid_utf8_body_is_400(service_url: str) -> None:
    raw = b'{"items": [{"id": "a", "text": "bad \xff\xfe bytes \xc3\x28", "source": "title"}]}'
    response = httpx.post(
        f"{service_url}/moderate", content=raw, headers={"Content-Type": "application/json"}, timeout=30
    )
    assert response.status_code == 400
    assert "unicode" in response.text.lower() or "utf" in response.text.lower()


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b'{"items": [{"id": "a", "text": "x", "source": "tweet"}]}',
        b'{"items": [{"id": "a", "text": "x", "source": "title", "extra": 1}]}',
        b'{"items": [{"id": "a", "source": "title"}]}',
        b'{"items": "nope"}',
    ],
)
def test_malformed_requests_are_400(service_url: str, body: bytes) -> None:
    response = httpx.post(
        f"{service_url}/moderate", content=body, headers={"Content-Type": "application/json"}, timeout=30
    )
    assert response.status_code == 400, response.text
    assert "error" in response.json()


def test_megabyte_text_and_control_characters(service_url: str) -> None:
    big = "Buy cheap followers now. " * 42_000  # ~1 MB
    controls = "\x00\x01\x1b[0mI will\u200b hurt\x7f you\x07"
    response = moderate(service_url, {"items": [item("big", big, "description"), item("ctl", controls)]})
    assert response.status_code == 200, response.text
    result = TextResult.model_validate_json(response.content)
    big_result, ctl = result.items
    assert any(f"over the {MAX_CHARS}-character limit" in n for n in big_result.notes)
    assert any("control/invisible character(s) ignored" in n for n in ctl.notes)
    assert ctl.scores["violence"] >= 0.5


def test_non_english_is_scored_with_a_note(service_url: str) -> None:
    items = [item("ru", "Я тебя найду"), item("fr", "Je ne sais pas ce que tu veux dire")]
    response = moderate(service_url, {"items": items})
    assert response.status_code == 200
    ru, fr = TextResult.model_validate_json(response.content).items
    assert (ru.language, fr.language) == ("und-Cyrl", "fr")
    assert all(any("low-confidence" in n for n in r.notes) for r in (ru, fr))


def _batch_histogram(url: str) -> tuple[float, float]:
    """(count, count of batches holding one request) of BentoML's embed batch-size histogram."""
    metrics = httpx.get(f"{url}/metrics", timeout=10).text
    count = single = 0.0
    for line in metrics.splitlines():
        if 'method_name="embed"' not in line or not line.startswith("bentoml_service_adaptive_batch_size"):
            continue
        value = float(line.rsplit(" ", 1)[1])
        if line.startswith("bentoml_service_adaptive_batch_size_count"):
            count = value
        elif re.search(r'le="1(\.0)?"', line):
            single = value
    return count, single


def test_concurrent_requests_share_batches_and_agree_with_sequential(service_url: str) -> None:
    texts = [
        "Selling xanax bars, dm me",
        "Had a lovely walk by the sea today",
        "You are a worthless loser, everyone hates you",
        "Claim your free gift card at this link now",
    ]
    bodies = [{"items": [item(f"{n}-{k}", t) for k, t in enumerate(texts)]} for n in range(16)]
    sequential = TextResult.model_validate_json(moderate(service_url, bodies[0]).content)
    count_before, single_before = _batch_histogram(service_url)
    with ThreadPoolExecutor(max_workers=16) as pool:
        responses = list(pool.map(lambda b: moderate(service_url, b), bodies))
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses if r.status_code != 200]
    for response in responses:
        result = TextResult.model_validate_json(response.content)
        for got, want in zip(result.items, sequential.items, strict=True):
            for category, score in want.scores.items():
                assert abs(got.scores[category] - score) < 1e-3, (got.id, category)
    count_after, single_after = _batch_histogram(service_url)
    batches = count_after - count_before
    merged = batches - (single_after - single_before)
    # 16 requests, fewer forward passes: concurrent requests' windows rode together.
    assert batches < 16, f"{batches} embedding batches for 16 concurrent requests"
    assert merged >= 1


def test_sustained_concurrency_has_no_errors(service_url: str) -> None:
    """Past BentoML's default client refresh (every 100 internal calls), which used to cut
    requests in flight (500 "Server disconnected")."""
    body = {"items": [item("a", "see you at the gym tomorrow")]}
    with ThreadPoolExecutor(max_workers=16) as pool:
        statuses = list(pool.map(lambda _: moderate(service_url, body).status_code, range(160)))
    assert statuses == [200] * 160, {s: statuses.count(s) for s in set(statuses)}


def test_policy_edit_is_picked_up(service_url: str, policy_dir: Path) -> None:
    path = policy_dir / "default.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["version"] = "http-test-2"
    data["categories"]["drugs"]["text"]["blocklist"] = {"terms": ["zorbex"]}
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    response = moderate(
        service_url, {"policy_version": "http-test-2", "items": [item("a", "buy z0rbex here")]}
    )
    assert response.status_code == 200
    result = TextResult.model_validate_json(response.content)
    assert result.policy.version == "http-test-2"
    assert result.items[0].scores["drugs"] == 1.0


def test_bad_model_path_stops_the_start_with_the_fix(tmp_path: Path, free_port: Callable[[], int]) -> None:
    env = {**os.environ, "OTEL_SDK_DISABLED": "true", "MODGATE_TEXT_MODEL_PATH": str(tmp_path / "missing")}
    bentoml = str(Path(sys.executable).with_name("bentoml"))
    done = subprocess.run(
        [bentoml, "serve", "services.text.service:Text", "--host", "127.0.0.1", "--port", str(free_port())],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode != 0
    assert f"text model directory {tmp_path / 'missing'} does not exist" in done.stdout + done.stderr
    assert "MODGATE_TEXT_MODEL_PATH" in done.stdout + done.stderr
