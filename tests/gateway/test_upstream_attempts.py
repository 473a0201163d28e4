"""Upstream attempts: one classification each (ok / transient / fatal), and the call metrics and
breaker they feed, against real HTTP servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from gateway import metrics
from gateway.upstreams.breaker import BreakerState
from gateway.upstreams.http import (
    AttemptVerdict,
    Upstream,
    UpstreamError,
    classify_error,
    classify_response,
    classify_timeout,
)
from tests.gateway.test_upstream_resilience import counting, free_port, serve, settings

REQUEST = httpx.Request("POST", "http://upstream/score")


def response(status: int, text: str = "") -> httpx.Response:
    return httpx.Response(status, text=text, request=REQUEST)


@pytest.mark.parametrize(
    ("status", "verdict", "label", "healthy", "kind"),
    [
        (200, AttemptVerdict.OK, "ok", True, ""),
        (302, AttemptVerdict.OK, "ok", True, ""),
        (502, AttemptVerdict.TRANSIENT, "transient", False, "http_5xx"),
        (503, AttemptVerdict.TRANSIENT, "transient", False, "http_5xx"),
        (504, AttemptVerdict.TRANSIENT, "transient", False, "http_5xx"),
        (500, AttemptVerdict.FATAL, "http_5xx", False, "http_5xx"),
        (501, AttemptVerdict.FATAL, "http_5xx", False, "http_5xx"),
        (400, AttemptVerdict.FATAL, "http_4xx", True, "http_4xx"),
        (409, AttemptVerdict.FATAL, "http_4xx", True, "http_4xx"),
        (422, AttemptVerdict.FATAL, "http_4xx", True, "http_4xx"),
    ],
)
def test_responses_are_classified_by_status(
    status: int, verdict: AttemptVerdict, label: str, healthy: bool, kind: str
) -> None:
    attempt = classify_response(response(status, "model not loaded\nyet"))
    assert (attempt.verdict, attempt.label, attempt.healthy, attempt.kind) == (verdict, label, healthy, kind)
    if verdict is AttemptVerdict.OK:
        assert attempt.response is not None and attempt.response.status_code == status
    else:
        assert attempt.message == f"HTTP {status}: model not loaded yet"
    if label == "http_5xx":  # the breaker remembers the status, not the body
        assert attempt.breaker_note == f"HTTP {status}"


def test_errors_and_timeouts_are_classified() -> None:
    refused = classify_error(httpx.ConnectError("refused", request=REQUEST))
    assert (refused.verdict, refused.label, refused.kind) == (
        AttemptVerdict.TRANSIENT,
        "transient",
        "connect",
    )
    assert refused.message == "ConnectError: refused" and not refused.healthy
    dropped = classify_error(httpx.RemoteProtocolError("", request=REQUEST))
    assert dropped.verdict is AttemptVerdict.TRANSIENT and dropped.message.endswith("connection failed")
    broken = classify_error(httpx.DecodingError("bad gzip", request=REQUEST))
    assert (broken.verdict, broken.label, broken.kind) == (AttemptVerdict.FATAL, "error", "connect")
    assert broken.breaker_note == "DecodingError" and broken.message == "DecodingError: bad gzip"

    slow_connect = classify_timeout(httpx.ConnectTimeout("slow", request=REQUEST), 1.0)
    assert (slow_connect.verdict, slow_connect.kind) == (AttemptVerdict.TRANSIENT, "connect")
    for slow in (httpx.ReadTimeout("slow answer", request=REQUEST), TimeoutError()):
        attempt = classify_timeout(slow, 0.25)
        assert (attempt.verdict, attempt.label, attempt.kind) == (AttemptVerdict.FATAL, "timeout", "timeout")
        assert attempt.message == "no answer within 250 ms" and attempt.breaker_note == "timeout"


def calls(service: str, outcome: str) -> float:
    labels = {"service": service, "variant": "stable", "outcome": outcome}
    return metrics.REGISTRY.get_sample_value("modgate_gateway_upstream_calls_total", labels) or 0.0


def errors(service: str, kind: str) -> float:
    labels = {"service": service, "variant": "stable", "kind": kind}
    return metrics.REGISTRY.get_sample_value("modgate_gateway_upstream_errors_total", labels) or 0.0


def retries(service: str) -> float:
    labels = {"service": service, "variant": "stable"}
    return metrics.REGISTRY.get_sample_value("modgate_gateway_upstream_retries_total", labels) or 0.0


def test_every_attempt_is_counted_once_and_feeds_the_breaker() -> None:
    service = "attempts-a"  # labels no other test uses

    async def main() -> None:
        hits, handler = counting([503, 200, 422, 500])
        runner, url = await serve(handler)
        up = Upstream(service, "stable", url, settings(breaker_failure_threshold=2))
        try:
            before = {o: calls(service, o) for o in ("transient", "ok", "http_4xx", "http_5xx")}
            await up.post("/x", deadline=time.monotonic() + 5, json={})  # 503 then 200
            assert retries(service) == 1
            with pytest.raises(UpstreamError) as rejected:  # 422: the service is fine
                await up.post("/x", deadline=time.monotonic() + 5, json={})
            assert (rejected.value.kind, rejected.value.status) == ("http_4xx", 422)
            assert up.breaker.consecutive_failures == 0
            with pytest.raises(UpstreamError) as failed:  # 500: not retried, counts against it
                await up.post("/x", deadline=time.monotonic() + 5, json={})
            assert (failed.value.kind, failed.value.status) == ("http_5xx", 500)
            assert up.breaker.consecutive_failures == 1 and up.breaker.last_error == "HTTP 500"
            assert hits == [503, 200, 422, 500]
            after = {o: calls(service, o) for o in before}
            assert {o: after[o] - before[o] for o in before} == {
                "transient": 1,
                "ok": 1,
                "http_4xx": 1,
                "http_5xx": 1,
            }
            assert errors(service, "http_4xx") == 1 and errors(service, "http_5xx") == 1
        finally:
            await up.aclose()
            await runner.cleanup()

    asyncio.run(main())


def test_transient_errors_exhaust_their_attempts_then_fail_with_the_kind_of_the_last() -> None:
    service = "attempts-b"

    async def main() -> None:
        hits, handler = counting([503])
        runner, url = await serve(handler)
        up = Upstream(service, "stable", url, settings(retry_max_attempts=2))
        try:
            with pytest.raises(UpstreamError) as err:
                await up.post("/x", deadline=time.monotonic() + 5, json={})
            assert err.value.kind == "http_5xx" and "(after 2 attempt(s))" in str(err.value)
            assert err.value.status is None
            assert hits == [503, 503] and calls(service, "transient") == 2 and retries(service) == 1
            assert errors(service, "http_5xx") == 1
        finally:
            await up.aclose()
            await runner.cleanup()

        refused = Upstream(
            service, "stable", f"http://127.0.0.1:{free_port()}", settings(retry_max_attempts=1)
        )
        try:
            with pytest.raises(UpstreamError) as err:
                await refused.post("/x", deadline=time.monotonic() + 5, json={})
            assert err.value.kind == "connect" and "(after 1 attempt(s))" in str(err.value)
            assert errors(service, "connect") == 1
        finally:
            await refused.aclose()

    asyncio.run(main())


def test_refusals_before_an_attempt_send_nothing() -> None:
    service = "attempts-c"

    async def main() -> None:
        hits, handler = counting([500])
        runner, url = await serve(handler)
        up = Upstream(service, "stable", url, settings(breaker_failure_threshold=1))
        try:
            with pytest.raises(UpstreamError) as late:
                await up.post("/x", deadline=time.monotonic(), json={})
            assert late.value.kind == "timeout" and "no time left" in str(late.value)
            with pytest.raises(UpstreamError):
                await up.post("/x", deadline=time.monotonic() + 5, json={})
            assert up.breaker.state == BreakerState.OPEN
            with pytest.raises(UpstreamError) as open_:
                await up.post("/x", deadline=time.monotonic() + 5, json={})
            assert open_.value.kind == "circuit_open" and "HTTP 500" in str(open_.value)
            assert hits == [500]  # neither refusal reached the service
            assert calls(service, "http_5xx") == 1 and errors(service, "circuit_open") == 1
        finally:
            await up.aclose()
            await runner.cleanup()

    asyncio.run(main())


def test_a_cancelled_attempt_gives_its_half_open_trial_back() -> None:
    async def main() -> None:
        async def hang(request: object) -> httpx.Response:
            await asyncio.sleep(5)
            raise AssertionError("unreachable")

        runner, url = await serve(hang)  # type: ignore[arg-type]
        up = Upstream("attempts-d", "stable", url, settings(breaker_failure_threshold=1))
        try:
            up.breaker.record_failure("down")
            await asyncio.sleep(0.35)  # past the reset timeout: one trial call may go
            assert up.breaker.state == BreakerState.HALF_OPEN
            call = asyncio.create_task(up.post("/x", deadline=time.monotonic() + 5, json={}))
            await asyncio.sleep(0.1)
            call.cancel()
            with pytest.raises(asyncio.CancelledError):
                await call
            assert up.breaker.state == BreakerState.HALF_OPEN and up.breaker.acquire()
        finally:
            await up.aclose()
            await runner.cleanup()

    asyncio.run(main())
