"""The speech service as a real process: `bentoml serve services.speech.service:Speech` over HTTP."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import psutil
import pytest

from modgate.tools.mediagen import SENTENCES, SR, Utterance
from modgate.tools.wer import word_error_rate
from modgate.wire import SpeechResult
from tests.services.speech.test_speech_transcription import assert_segments_inside_speech, transcript

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[3]
STARTUP_TIMEOUT_S = 180.0
MAX_AUDIO_SECONDS = 60


@pytest.fixture(scope="module")
def service_url(tmp_path_factory: pytest.TempPathFactory, free_port: Callable[[], int]) -> Iterator[str]:
    port = free_port()
    workdir = tmp_path_factory.mktemp("speech-service")
    log_path = workdir / "serve.log"
    env = {
        **os.environ,
        "BENTOML_HOME": str(workdir / "bentoml"),
        "OTEL_SDK_DISABLED": "true",  # no exporter chatter towards whatever listens on :4318
        "MODGATE_VARIANT": "canary",
        "MODGATE_SPEECH_MAX_AUDIO_SECONDS": str(MAX_AUDIO_SECONDS),
        "MODGATE_SPEECH_MODEL": "tiny.en",
        "MODGATE_SPEECH_ENGINE": "faster-whisper",
    }
    env.pop("MODGATE_SPEECH_MODEL_PATH", None)
    bentoml = str(Path(sys.executable).with_name("bentoml"))
    command = [bentoml, "serve", "services.speech.service:Speech", "--host", "127.0.0.1", "--port", str(port)]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
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
                tail = log_path.read_text()[-4000:]
                pytest.fail(f"speech service not ready after {STARTUP_TIMEOUT_S} s:\n{tail}")
            time.sleep(0.5)
        yield url
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop bentoml serve and every process it started (its worker runs in its own session)."""
    try:
        children = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        children = []
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    _, alive = psutil.wait_procs(children, timeout=10)
    for child in alive:
        child.kill()
    psutil.wait_procs(alive, timeout=10)


def post(url: str, pcm: bytes, **fields: str) -> httpx.Response:
    data = {"sample_rate": "16000", "dtype": "int16", **fields}
    data = {k: v for k, v in data.items() if v is not None}
    return httpx.post(
        f"{url}/transcribe",
        files={"audio": ("audio.pcm", pcm, "application/octet-stream")},
        data=data,
        timeout=120.0,
    )


def test_health_endpoints(service_url: str) -> None:
    assert httpx.get(f"{service_url}/livez").status_code == 200
    assert httpx.get(f"{service_url}/readyz").status_code == 200


def test_transcribes_int16_speech_over_http(
    service_url: str, spoken_track: tuple[np.ndarray, list[Utterance]]
) -> None:
    audio, spoken = spoken_track
    response = post(service_url, audio.astype("<i2").tobytes(), language="en")
    assert response.status_code == 200, response.text
    result = SpeechResult.model_validate_json(response.content)
    wer = word_error_rate(" ".join(SENTENCES), transcript(result))
    assert wer <= 0.15, f"WER {wer:.1%}: {transcript(result)!r}"
    assert_segments_inside_speech(result, spoken)
    assert result.model.variant == "canary"  # MODGATE_VARIANT reached the response
    assert result.model.name == "whisper-tiny.en" and result.model.engine == "faster-whisper/int8"
    assert {"decode_ms", "queue_ms", "vad_ms", "asr_ms", "total_ms"} <= result.timings_ms.keys()


def test_float32_and_silence_over_http(service_url: str) -> None:
    silence = post(service_url, np.zeros(20 * SR, "<f4").tobytes(), dtype="float32", variant="canary")
    assert silence.status_code == 200, silence.text
    result = SpeechResult.model_validate_json(silence.content)
    assert result.segments == [] and result.speech_seconds == 0.0 and result.audio_seconds == 20.0


def test_requests_queue_for_the_model_instead_of_sharing_cores(
    service_url: str, spoken_track: tuple[np.ndarray, list[Utterance]]
) -> None:
    pcm = spoken_track[0].astype("<i2").tobytes()
    with ThreadPoolExecutor(2) as pool:
        responses = list(pool.map(lambda _: post(service_url, pcm), range(2)))
    assert [r.status_code for r in responses] == [200, 200]
    results = [SpeechResult.model_validate_json(r.content) for r in responses]
    assert transcript(results[0]) == transcript(results[1])
    # One of them waited for (most of) the other's decode rather than decoding alongside it.
    waited = max(results, key=lambda r: r.timings_ms["queue_ms"])
    other = min(results, key=lambda r: r.timings_ms["queue_ms"])
    assert waited.timings_ms["queue_ms"] >= 0.5 * other.timings_ms["asr_ms"]


BAD_INPUTS: list[tuple[str, Callable[[str], httpx.Response], int, str]] = [
    ("empty audio", lambda u: post(u, b""), 400, "audio is empty"),
    ("odd byte count", lambda u: post(u, b"\x01\x02\x03"), 400, "not a whole number of int16 samples"),
    ("44.1 kHz", lambda u: post(u, b"\x00\x00" * 1000, sample_rate="44100"), 422, "resample to 16000 Hz"),
    ("dtype float64", lambda u: post(u, b"\x00" * 800, dtype="float64"), 422, "'int16' or 'float32'"),
    (
        "NaN samples",
        lambda u: post(u, np.array([0.1, np.nan, 0.2], "<f4").tobytes(), dtype="float32"),
        422,
        "NaN or infinite",
    ),
    (
        "too long",
        lambda u: post(u, np.zeros((MAX_AUDIO_SECONDS + 1) * SR, "<i2").tobytes()),
        413,
        f"over the {MAX_AUDIO_SECONDS} s limit",
    ),
    # tiny.en with the router (the default): other languages go to Whisper base; unknown codes are refused.
    ("unknown language", lambda u: post(u, b"\x00\x00" * SR, language="xx"), 422, "is not supported"),
    ("wrong variant", lambda u: post(u, b"\x00\x00" * SR, variant="stable"), 409, "serves variant 'canary'"),
    ("missing dtype", lambda u: post(u, b"\x00\x00" * SR, dtype=None), 400, "dtype"),  # type: ignore[arg-type]
]


@pytest.mark.parametrize(("label", "send", "status", "message"), BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_bad_input_gets_a_4xx_with_a_clear_message(
    service_url: str, label: str, send: Callable[[str], httpx.Response], status: int, message: str
) -> None:
    response = send(service_url)
    assert response.status_code == status, f"{label}: {response.status_code} {response.text}"
    body = response.json()
    assert message in str(body), f"{label}: {body}"
    assert "error" in body
