"""The hostile corpus against the real gateway process: every input gets its documented status,
nothing crashes or hangs, and the memory of the gateway and its split worker stays bounded.

The gateway runs the split-only pipeline (no model services: the splitter, validation, limits
and URI handling are what is under attack). URI fetching is on, with every non-public host of
the corpus allowlisted by name but no network allowed, so each http case must be refused by
the address check, before any connection: a loopback HTTP server counts the connections it
gets and must see none.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import grpc
import pytest

from modgate.v1 import moderation_pb2 as pb
from modgate.v1 import moderation_pb2_grpc as pb_grpc
from tests.security import corpus
from tests.security import hostile_media as hm
from tests.security.gateway_proc import Gateway, running_gateway

pytestmark = pytest.mark.timeout(300)

DEADLINE_S = 30.0
MiB = 1024 * 1024
# Growth of gateway + worker RSS over the whole corpus, after warm-up; and the peak at any time.
MAX_RSS_GROWTH = 128 * MiB
MAX_RSS_PEAK = 768 * MiB


class _CountingHandler(BaseHTTPRequestHandler):
    connections = 0

    def setup(self) -> None:
        type(self).connections += 1
        super().setup()

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def trap_server() -> Iterator[ThreadingHTTPServer]:
    """A loopback HTTP server that no case may reach."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _CountingHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def media_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("corpus")
    root, outside = base / "root", base / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "secret.mp4").write_bytes(hm.encode("mp4"))
    (root / "clip.mp4").write_bytes(hm.encode("mp4", audio="aac"))
    (root / "passwd-link").symlink_to("/etc/passwd")
    (root / "zero-link").symlink_to("/dev/zero")
    (root / "loop-a").symlink_to(root / "loop-b")
    (root / "loop-b").symlink_to(root / "loop-a")
    os.mkfifo(root / "fifo")
    return root


@pytest.fixture(scope="module")
def gateway(
    media_root: Path, trap_server: ThreadingHTTPServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    env = {
        "MODGATE_GATEWAY_MEDIA_ROOT": str(media_root),
        "MODGATE_GATEWAY_MAX_UNARY_BYTES": str(corpus.UNARY_LIMIT),
        "MODGATE_GATEWAY_MAX_STREAM_BYTES": str(corpus.STREAM_LIMIT),
        "MODGATE_GATEWAY_DECODE_BUDGET_S": "10",
        "MODGATE_GATEWAY_URI_FETCH_ENABLED": "true",
        "MODGATE_GATEWAY_URI_ALLOWLIST": ",".join(corpus.NON_PUBLIC_HOSTS),
        "MODGATE_GATEWAY_URI_FETCH_SCHEMES": "http,https",
        "MODGATE_GATEWAY_URI_FETCH_TIMEOUT_S": "3",
    }
    with running_gateway(tmp_path_factory.mktemp("corpus-logs"), env, name="corpus") as process:
        yield process


def _chunks(header: pb.ModerateRequest, data: bytes, size: int) -> Iterator[pb.ModerateChunk]:
    yield pb.ModerateChunk(header=header)
    for offset in range(0, len(data), size):
        yield pb.ModerateChunk(data=data[offset : offset + size])


def _send(
    stub: pb_grpc.ModerationStub, case: corpus.Case, index: int, root: Path, http_port: int
) -> pb.Verdict:
    request = pb.ModerateRequest(**{"request_id": f"corpus-{index}", **case.fields})  # type: ignore[arg-type]
    if case.messages is not None:
        return stub.ModerateStream(iter(case.messages), timeout=DEADLINE_S)
    if case.stream is not None:
        return stub.ModerateStream(_chunks(request, case.stream, case.chunk), timeout=DEADLINE_S)
    if case.media is not None:
        request.media = case.media
    elif case.file is not None:
        path = root / f"case-{index}.bin"
        path.write_bytes(case.file)
        if case.sparse:
            with path.open("r+b") as handle:
                handle.truncate(case.sparse)
        request.media_uri = path.as_uri()
    elif case.uri is not None:
        request.media_uri = case.uri.format(root=root, http_port=http_port)
    return stub.Moderate(request, timeout=DEADLINE_S)


class _PeakSampler:
    def __init__(self, gateway: Gateway, period_s: float = 0.05) -> None:
        self.gateway = gateway
        self.period_s = period_s
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.gateway.rss_bytes())
            self._stop.wait(self.period_s)

    def __enter__(self) -> _PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def test_corpus_has_at_least_50_distinct_hostile_inputs() -> None:
    cases = corpus.build()
    assert len(cases) >= 50
    assert len({c.name for c in cases}) == len(cases)


def test_every_hostile_input_gets_its_documented_status(
    gateway: Gateway, media_root: Path, trap_server: ThreadingHTTPServer, tmp_path: Path
) -> None:
    cases = corpus.build()
    http_port = trap_server.server_address[1]
    options = [("grpc.max_send_message_length", 64 * MiB), ("grpc.max_receive_message_length", 64 * MiB)]
    with gateway.channel() as warm_channel:
        warm = pb_grpc.ModerationStub(warm_channel)
        for data in (hm.encode("mp4", audio="aac"), hm.encode("webm", video="libvpx-vp9", audio="libopus")):
            assert warm.Moderate(pb.ModerateRequest(media=data), timeout=DEADLINE_S).media.has_video
    baseline = gateway.rss_bytes()

    results = []
    with (
        _PeakSampler(gateway) as sampler,
        contextlib.closing(grpc.insecure_channel(gateway.address, options=options)) as channel,
    ):
        stub = pb_grpc.ModerationStub(channel)
        for index, case in enumerate(cases):
            started = time.monotonic()
            try:
                verdict = _send(stub, case, index, media_root, http_port)
                status, details = "OK", ""
                assert verdict.policy_name == "default"
            except grpc.RpcError as error:
                status, details = error.code().name, error.details() or ""  # type: ignore[attr-defined]
            results.append(
                {
                    "case": case.name,
                    "status": status,
                    "expected": list(case.expect),
                    "seconds": round(time.monotonic() - started, 3),
                    "details": details[:300],
                    "fragment_ok": not case.fragment or case.fragment in details,
                }
            )
    after = gateway.rss_bytes()

    report = {
        "inputs": len(results),
        "rss_baseline_mib": round(baseline / MiB, 1),
        "rss_after_mib": round(after / MiB, 1),
        "rss_peak_mib": round(sampler.peak / MiB, 1),
        "slowest_s": max(r["seconds"] for r in results),
        "results": results,
    }
    (tmp_path / "hostile-corpus.json").write_text(json.dumps(report, indent=2))
    print(
        f"\nhostile corpus: {len(results)} inputs, RSS {report['rss_baseline_mib']} -> "
        f"{report['rss_after_mib']} MiB (peak {report['rss_peak_mib']} MiB), slowest {report['slowest_s']} s"
    )

    wrong = [r for r in results if r["status"] not in r["expected"] or not r["fragment_ok"]]
    assert not wrong, json.dumps(wrong, indent=2)
    # No crash: no INTERNAL/UNKNOWN, the gateway is up, no worker died, nothing raised unexpectedly.
    assert not [r for r in results if r["status"] in ("INTERNAL", "UNKNOWN", "UNAVAILABLE")]
    assert gateway.alive() and gateway.serving()
    log = gateway.log()
    assert "worker pool broke" not in log and "stuck" not in log, log[-3000:]
    assert "Traceback" not in log, log[-3000:]
    # No hang: every call answered well inside its deadline.
    assert report["slowest_s"] < DEADLINE_S
    # Never connected anywhere it was refused.
    assert _CountingHandler.connections == 0
    # Bounded memory.
    assert after - baseline < MAX_RSS_GROWTH, report
    assert sampler.peak < MAX_RSS_PEAK, report


def test_undeserializable_request_bytes_are_refused_without_harm(gateway: Gateway) -> None:
    """Raw bytes that are not a ModerateRequest at all. gRPC's Python server fails them while
    deserializing, before the gateway's handler runs, and answers UNKNOWN ("Unexpected
    DecodeError"); the proto's status list covers requests that parse. The gateway keeps serving."""
    with gateway.channel() as channel:
        raw = channel.unary_unary("/modgate.v1.Moderation/Moderate")
        for payload in (b"\xff" * 64, b"\x1a\xff\xff\xff\xff\x0f" + b"x" * 10, hm.encode("mp4")[:200]):
            with pytest.raises(grpc.RpcError) as caught:
                raw(payload, timeout=10)
            assert caught.value.code() == grpc.StatusCode.UNKNOWN  # type: ignore[attr-defined]
            assert "DecodeError" in (caught.value.details() or "")  # type: ignore[attr-defined]
        verdict = pb_grpc.ModerationStub(channel).Moderate(pb.ModerateRequest(title="still here"), timeout=10)
    assert verdict.policy_name == "default"
    assert gateway.alive() and gateway.serving()
