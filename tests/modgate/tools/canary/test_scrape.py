"""The gateway's own /metrics, served by its MetricsEndpoint and read over HTTP, parsed into
the figures the report uses (the gateway's metric names, not copies of them)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gateway import metrics
from modgate.tools.canary.scrape import MetricFigures, MetricsProblem, metrics_url, parse_metrics, scrape
from tests.gateway.test_upstream_resilience import free_port


@pytest.fixture
def endpoint() -> Iterator[str]:
    served = metrics.MetricsEndpoint(0)
    served.start()
    try:
        yield f"http://127.0.0.1:{served.port}"
    finally:
        served.stop()


def figures_now(url: str) -> MetricFigures:
    return scrape([url], "vision")


def test_scraped_counters_are_what_the_gateway_counted(endpoint: str) -> None:
    before = figures_now(endpoint)
    for _ in range(7):
        metrics.UPSTREAM_CALLS.labels("vision", "canary", "ok").inc()
    metrics.UPSTREAM_CALLS.labels("vision", "canary", "transient").inc(4)  # retried attempts: not calls
    metrics.UPSTREAM_ERRORS.labels("vision", "canary", "timeout").inc(2)
    metrics.UPSTREAM_ERRORS.labels("vision", "canary", "http_5xx").inc()
    metrics.UPSTREAM_CALLS.labels("vision", "stable", "ok").inc(5)
    metrics.UPSTREAM_CALLS.labels("text", "canary", "ok").inc(100)  # another service: not counted
    metrics.SHADOW_REQUESTS.labels("vision", "agree").inc(9)
    metrics.SHADOW_REQUESTS.labels("vision", "disagree").inc(2)
    metrics.SHADOW_REQUESTS.labels("vision", "failed").inc()
    after = figures_now(endpoint)
    assert after.calls("canary") - before.calls("canary") == 10  # 7 ok + 3 failed calls
    assert after.failures("canary") - before.failures("canary") == 3
    assert after.calls("stable") - before.calls("stable") == 5
    assert after.shadow_compared - before.shadow_compared == 11
    assert after.shadow_disagreed - before.shadow_disagreed == 2
    assert after.sources == [f"{endpoint}/metrics"]


def test_two_gateways_are_summed(endpoint: str) -> None:
    one = figures_now(endpoint)
    both = scrape([endpoint, f"{endpoint}/metrics"], "vision")
    assert both.calls("canary") == 2 * one.calls("canary") and both.shadow_compared == 2 * one.shadow_compared


def test_an_unreachable_or_wrong_endpoint_is_a_clear_problem() -> None:
    with pytest.raises(MetricsProblem, match=r"cannot read http://127\.0\.0\.1:\d+/metrics"):
        scrape([f"http://127.0.0.1:{free_port()}"], "text", timeout_s=2)
    with pytest.raises(MetricsProblem, match="not a metrics URL"):
        metrics_url("gateway:9464")
    with pytest.raises(MetricsProblem, match="not the Prometheus text format"):
        parse_metrics("modgate_gateway_upstream_calls_total{service=text 3\n", "text")
