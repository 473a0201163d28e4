"""Text in bounded batches, small requests first, and every batch cancelled with its request
(gateway/orchestrator/text_work.py), against a small real HTTP server speaking the text
service's wire contract."""

from __future__ import annotations

import asyncio
import time

import pytest
from aiohttp import web

from gateway.orchestrator.text_work import TextLane, TextScorer, text_batches
from gateway.upstreams.config import OrchestrationSettings
from gateway.upstreams.http import Upstream, UpstreamError
from modgate.wire import ModelInfo, TextItem, TextItemResult, TextRequest, TextResult
from tests.gateway.test_orchestrator import POLICY, ref, serve, text_handler


def items(*sizes: int) -> list[TextItem]:
    return [TextItem(id=f"i{n}", text="x" * size, source="caption") for n, size in enumerate(sizes)]


def test_batches_are_bounded_by_items_and_characters() -> None:
    batches = text_batches(items(*([10] * 7)), max_items=3, max_chars=1000)
    assert [len(b) for b in batches] == [3, 3, 1]
    batches = text_batches(items(600, 600, 300, 2500, 10), max_items=64, max_chars=1000)
    assert [[len(i.text) for i in b] for b in batches] == [[600], [600, 300], [2500], [10]]
    assert text_batches([], max_items=3, max_chars=10) == []


def settings(**overrides: object) -> OrchestrationSettings:
    base: dict[str, object] = {"metrics_port": 0, "retry_backoff_base_ms": 1, "text_batch_chars": 100}
    base.update(overrides)
    return OrchestrationSettings(**base)  # type: ignore[arg-type]


async def score(scorer: TextScorer, up: Upstream, texts: list[TextItem], budget_s: float = 5.0) -> int:
    results = await scorer.score(
        up, texts, policy=POLICY.name, policy_version=POLICY.version, deadline=time.monotonic() + budget_s
    )
    return sum(len(r.items) for r in results)


def test_a_request_sends_at_most_its_concurrency_of_batches() -> None:
    live, peak = [0], [0]

    async def slow(request: web.Request) -> web.StreamResponse:
        live[0] += 1
        peak[0] = max(peak[0], live[0])
        await asyncio.sleep(0.05)
        live[0] -= 1
        return await text_handler()(request)

    async def main() -> int:
        runner, url = await serve({"/moderate": slow})
        s = settings(text_request_concurrency=2, text_bulk_inflight=4, text_bulk_idle_ms=0)
        up = Upstream("text", "stable", url, s)
        try:
            return await score(TextScorer(s), up, items(*([100] * 8)))
        finally:
            await up.aclose()
            await runner.cleanup()

    assert asyncio.run(main()) == 8
    assert peak[0] == 2


def test_bulk_batches_yield_to_small_calls_and_interleave() -> None:
    order: list[str] = []

    async def handle(request: web.Request) -> web.StreamResponse:
        body = TextRequest.model_validate(await request.json())
        order.append(body.items[0].id.split("-")[0])
        await asyncio.sleep(0.03)
        return _answer(body)

    async def main() -> None:
        runner, url = await serve({"/moderate": handle})
        s = settings(
            text_request_concurrency=1, text_bulk_inflight=1, text_bulk_idle_ms=20, text_bulk_max_wait_ms=5000
        )
        up = Upstream("text", "stable", url, s)
        scorer = TextScorer(s)
        try:
            bulk_a = [TextItem(id=f"a-{i}", text="x" * 100, source="caption") for i in range(4)]
            bulk_b = [TextItem(id=f"b-{i}", text="x" * 100, source="caption") for i in range(4)]
            tasks = [asyncio.create_task(score(scorer, up, bulk)) for bulk in (bulk_a, bulk_b)]
            await asyncio.sleep(0.005)
            for n in range(3):  # small requests arriving while the bulk ones wait
                await score(scorer, up, [TextItem(id=f"s{n}-0", text="hi", source="title")])
            assert await asyncio.gather(*tasks) == [4, 4]
        finally:
            await up.aclose()
            await runner.cleanup()

    asyncio.run(main())
    # The first bulk batch started while nothing else ran; every small call that came while
    # bulk batches waited went first; then the two bulk requests took turns, batch by batch.
    bulk_at = [i for i, who in enumerate(order) if who in ("a", "b")]
    small_at = [i for i, who in enumerate(order) if who.startswith("s")]
    assert len(small_at) == 3 and max(small_at) < bulk_at[1], order
    bulk = [order[i] for i in bulk_at]
    assert bulk in (["a", "b"] * 4, ["b", "a"] * 4), order


def _answer(body: TextRequest) -> web.Response:
    result = TextResult(
        items=[TextItemResult(id=i.id, scores={"violence": 0.01}, matches=[]) for i in body.items],
        model=ModelInfo(name="all-MiniLM-L6-v2", version="x", variant="stable"),
        policy=ref(POLICY),
    )
    return web.json_response(text=result.model_dump_json())


def test_bulk_always_progresses_after_its_maximum_wait() -> None:
    async def main() -> float:
        lane = TextLane("stable", bulk_inflight=1, idle_s=10.0, max_wait_s=0.1)
        async with lane.small():  # a small call that never ends, for this test
            started = time.monotonic()
            async with lane.bulk(time.monotonic() + 5):
                return time.monotonic() - started

    assert 0.09 <= asyncio.run(main()) < 1.0


def test_a_bulk_batch_whose_turn_does_not_come_is_a_timeout() -> None:
    async def main() -> None:
        lane = TextLane("stable", bulk_inflight=1, idle_s=10.0, max_wait_s=10.0)
        async with lane.small(), lane.bulk(time.monotonic() + 0.05):
            raise AssertionError("the turn never comes while a small call runs")

    with pytest.raises(TimeoutError):
        asyncio.run(main())


def test_one_failing_batch_cancels_the_others_and_their_retries() -> None:
    calls: list[float] = []

    async def handle(request: web.Request) -> web.StreamResponse:
        body = TextRequest.model_validate(await request.json())
        calls.append(time.monotonic())
        if body.items[0].id == "i0":
            return web.json_response({"error": "bad"}, status=400)  # fatal: fails the request
        await asyncio.sleep(0.3)
        return web.json_response(status=503)  # the others would be retried

    async def main() -> float:
        runner, url = await serve({"/moderate": handle})
        s = settings(text_request_concurrency=4, text_bulk_inflight=4, text_bulk_idle_ms=0)
        up = Upstream("text", "stable", url, s)
        try:
            with pytest.raises(UpstreamError, match="HTTP 400"):
                await score(TextScorer(s), up, items(*([100] * 6)))
            failed_at = time.monotonic()
            await asyncio.sleep(0.8)  # long enough for the 503s and retries, had they continued
            return failed_at
        finally:
            await up.aclose()
            await runner.cleanup()

    failed_at = asyncio.run(main())
    assert calls and all(at <= failed_at for at in calls), (
        len(calls),
        [round(c - failed_at, 3) for c in calls],
    )
