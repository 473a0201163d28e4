"""The verdict store with the real model services: duplicates call no model, concurrent
duplicates across two gateways sharing PostgreSQL are one computation, a SIGKILLed gateway
loses no verdict a client received, a store outage spools (or refuses) and drains.

Requests are text-only (the text service: the cheapest model) so the counts are exact: each
computed request is one POST /moderate to the text service, counted by the gateways'
modgate_gateway_upstream_calls_total{service="text"}.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest
import yaml

from gateway.replay import replay
from modgate.client import ModerationError
from modgate.policy import DEFAULT_POLICY_DIR, load_policies
from modgate.store import StoreSettings, VerdictStore
from modgate.tools.pgserver import TemporaryPostgres
from modgate.v1 import moderation_pb2 as pb
from tests.e2e.conftest import Gateway, Services, metric_value
from tests.store_fixtures import fresh_postgres_database

pytestmark = pytest.mark.timeout(300)

TEXT = "Great recipe, thanks for sharing!"


def text_calls(*gateways: Gateway) -> float:
    """HTTP calls the gateways made to the text service (their own counter, incremented before
    the reply: exact, unlike the service's BentoML metrics, which lag and mix processes)."""
    return sum(
        metric_value(g.metrics(), "modgate_gateway_upstream_calls_total", service="text") for g in gateways
    )


def open_store(url: str) -> VerdictStore:
    return VerdictStore.open(StoreSettings(url=url))


def moderate(gateway: Gateway, request_id: str, text: str = TEXT, **kw: object) -> pb.Verdict:
    with gateway.client(timeout_s=60) as client:
        return client.moderate_text(text, request_id=request_id, **kw)  # type: ignore[arg-type]


def test_the_same_request_id_twice_calls_no_model(
    services: Services, start_gateway: Callable[..., Gateway], tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'verdicts.db'}"
    gateway = start_gateway("gateway-store-twice", services.upstreams_yaml(), MODGATE_STORE_URL=url)
    first = moderate(gateway, "twice-1")
    before = text_calls(gateway)
    assert before >= 1
    second = moderate(gateway, "twice-1")
    assert text_calls(gateway) == before  # no model call
    assert second.from_store and second.verdict_id == first.verdict_id
    lookup = {t.stage: t.duration_ms for t in second.timings}
    assert list(lookup) == ["store_lookup"] and lookup["store_lookup"] < 50
    metrics = gateway.metrics()
    assert metric_value(metrics, "modgate_gateway_store_outcomes_total", outcome="from_store") == 1
    assert metric_value(metrics, "modgate_gateway_store_outcomes_total", outcome="stored") == 1


@pytest.fixture(scope="module")
def shared_pg_url(postgres_server: TemporaryPostgres) -> Iterator[str]:
    with fresh_postgres_database(postgres_server) as url:
        yield url


def test_concurrent_duplicates_across_two_gateways_are_one_computation(
    services: Services, start_gateway: Callable[..., Gateway], shared_pg_url: str
) -> None:
    one = start_gateway("gateway-pg-a", services.upstreams_yaml(), MODGATE_STORE_URL=shared_pg_url)
    two = start_gateway("gateway-pg-b", services.upstreams_yaml(), MODGATE_STORE_URL=shared_pg_url)
    moderate(one, "warm-a")
    moderate(two, "warm-b")
    before = text_calls(one, two)
    barrier = threading.Barrier(8)

    def send(index: int) -> pb.Verdict:
        barrier.wait()
        return moderate(one if index % 2 else two, "dup-across-1")

    with ThreadPoolExecutor(8) as pool:
        verdicts = list(pool.map(send, range(8)))
    assert text_calls(one, two) - before == 1  # one computation for eight requests
    assert len({v.verdict_id for v in verdicts}) == 1
    assert sum(not v.from_store for v in verdicts) == 1
    store = open_store(shared_pg_url)
    try:
        assert store.find("anonymous", "dup-across-1") is not None
        assert store.count() == 3
    finally:
        store.close()


def test_a_sigkilled_gateway_loses_no_verdict_a_client_received(
    services: Services, start_gateway: Callable[..., Gateway], tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'verdicts.db'}"
    gateway = start_gateway("gateway-store-kill", services.upstreams_yaml(), MODGATE_STORE_URL=url)
    received: list[pb.Verdict] = []
    failures: list[grpc.StatusCode] = []
    stop = threading.Event()

    def client_loop(worker: int) -> None:
        sent = 0
        with gateway.client(timeout_s=20) as client:
            while not stop.is_set():
                sent += 1
                try:
                    received.append(
                        client.moderate_text(f"{TEXT} #{worker}-{sent}", request_id=f"k-{worker}-{sent}")
                    )
                except ModerationError as exc:
                    failures.append(exc.code)
                    return

    threads = [threading.Thread(target=client_loop, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 60
    while len(received) < 20 and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(gateway.proc.pid, signal.SIGKILL)  # mid-load: requests in flight die with it
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    assert len(received) >= 20 and failures  # the load ran and the kill cut it
    store = open_store(url)
    try:
        for verdict in received:
            record = store.get(verdict.verdict_id)
            assert record is not None, f"verdict {verdict.verdict_id} ({verdict.request_id}) was lost"
            assert pb.Verdict.FromString(record.verdict) == verdict
        # The real gateway's records re-fuse to what it decided (replay under the same policy).
        report = replay(store, load_policies()["default"])
        assert report.scanned >= len(received) and report.matrix.changed == 0
        assert report.rescan.total == 0 and not report.not_refused and not report.errors
    finally:
        store.close()


def policy_dir(tmp_path: Path, on_unavailable: str) -> Path:
    policy = yaml.safe_load((DEFAULT_POLICY_DIR / "default.yaml").read_text(encoding="utf-8"))
    policy["store"] = {"on_unavailable": on_unavailable}
    directory = tmp_path / f"policies-{on_unavailable}"
    directory.mkdir()
    (directory / "default.yaml").write_text(yaml.safe_dump(policy), encoding="utf-8")
    return directory


def wait_for(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s} s: {what}")
        time.sleep(0.2)


def answers(gateway: Gateway, request_id: str) -> bool:
    try:
        return bool(moderate(gateway, request_id).verdict_id)
    except ModerationError as exc:
        assert exc.code == grpc.StatusCode.UNAVAILABLE, exc
        return False


def test_a_store_outage_spools_then_drains_or_refuses_as_the_policy_says(
    services: Services, start_gateway: Callable[..., Gateway], tmp_path: Path
) -> None:
    with TemporaryPostgres() as server:
        server.create_database("outage")
        url = server.url_for("outage")
        spool = tmp_path / "spool"
        spooling = start_gateway(
            "gateway-spool",
            services.upstreams_yaml(),
            MODGATE_STORE_URL=url,
            MODGATE_STORE_SPOOL_DIR=str(spool),
            MODGATE_STORE_CONNECT_TIMEOUT_S="1",
        )
        refusing = start_gateway(
            "gateway-refuse",
            services.upstreams_yaml(),
            MODGATE_STORE_URL=url,
            MODGATE_POLICY_DIR=str(policy_dir(tmp_path, "refuse")),
            MODGATE_STORE_CONNECT_TIMEOUT_S="1",
        )
        assert not moderate(spooling, "before-outage").from_store
        server.stop()
        during = [moderate(spooling, f"outage-{i}") for i in range(5)]
        assert all(v.verdict_id for v in during)  # answered, kept in the spool
        assert sum(1 for _ in spool.glob("*.jsonl")) >= 1
        with pytest.raises(ModerationError) as refused:
            moderate(refusing, "refused-1")
        assert refused.value.code == grpc.StatusCode.UNAVAILABLE
        assert "store.on_unavailable: refuse" in refused.value.details
        server.start()
        store = open_store(url)
        try:
            wait_for(lambda: store.count() == 6, 30, "the spooled verdicts drained into the store")
            for verdict in during:
                record = store.get(verdict.verdict_id)
                assert record is not None and pb.Verdict.FromString(record.verdict) == verdict
            assert store.find("anonymous", "refused-1") is None
        finally:
            store.close()
        wait_for(lambda: not list(spool.glob("*.jsonl")), 10, "the spool emptied")
        # The refusing gateway serves again once its probe sees the store (every second).
        wait_for(lambda: answers(refusing, "after-outage"), 10, "the refusing gateway answering again")
