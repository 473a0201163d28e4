"""Small real HTTP servers that stand in for a model service in failure tests.

    python -m tests.e2e.fake_upstream --port 4000 --mode slow --delay-s 5
    python -m tests.e2e.fake_upstream --port 4001 --mode deviant

slow:    answers /readyz at once, but every POST only after --delay-s seconds (a stuck model).
deviant: speaks the text service's contract (POST /moderate -> modgate.wire.TextResult for the
         same policy the gateway holds) but scores every item 0.97 violence: a canary whose
         decisions differ from stable, for shadow-mode tests.
deviant-speech: speaks the speech service's contract (POST /transcribe -> SpeechResult) but
         always "hears" a threat: a speech canary whose transcript changes the decision.
These are real processes on 127.0.0.1 — the gateway talks to them over HTTP like to the
real services.
"""

from __future__ import annotations

import argparse
import asyncio

from aiohttp import web

from modgate.policy import load_policies
from modgate.wire import (
    ModelInfo,
    PolicyRef,
    SpeechResult,
    SpeechSegment,
    TextItemResult,
    TextMatch,
    TextRequest,
    TextResult,
)

THREAT = "I will kill you and your whole family."


def app(mode: str, delay_s: float) -> web.Application:
    policies = load_policies()
    application = web.Application(client_max_size=64 * 1024 * 1024)

    async def ready(_request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def slow(request: web.Request) -> web.Response:
        await request.read()
        await asyncio.sleep(delay_s)
        return web.json_response({"error": "too slow to matter"}, status=500)

    async def classify(request: web.Request) -> web.Response:
        req = TextRequest.model_validate(await request.json())
        policy = policies[req.policy]
        result = TextResult(
            items=[
                TextItemResult(
                    id=item.id,
                    scores={"violence": 0.97},
                    matches=[
                        TextMatch(category="violence", score=0.97, signal="semantic", evidence=item.text)
                    ],
                )
                for item in req.items
            ],
            model=ModelInfo(name="deviant-canary", version="0", variant="canary"),
            policy=PolicyRef(name=policy.name, version=policy.version, digest=policy.digest),
        )
        return web.json_response(text=result.model_dump_json())

    async def transcribe(request: web.Request) -> web.Response:
        form = await request.post()
        seconds = len(form["audio"].file.read()) / 2 / 16000  # type: ignore[union-attr]
        result = SpeechResult(
            segments=[
                SpeechSegment(text=THREAT, start_s=1.0, end_s=3.0, avg_logprob=-0.2, no_speech_prob=0.01)
            ],
            language="en",
            audio_seconds=seconds,
            speech_seconds=2.0,
            model=ModelInfo(name="deviant-whisper", version="0", variant="canary"),
        )
        return web.json_response(text=result.model_dump_json())

    application.router.add_get("/readyz", ready)
    application.router.add_get("/livez", ready)
    if mode == "slow":
        application.router.add_post("/{tail:.*}", slow)
    elif mode == "deviant-speech":
        application.router.add_post("/transcribe", transcribe)
    else:
        application.router.add_post("/moderate", classify)
    return application


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--mode", choices=["slow", "deviant", "deviant-speech"], required=True)
    parser.add_argument("--delay-s", type=float, default=5.0)
    args = parser.parse_args()
    web.run_app(app(args.mode, args.delay_s), host="127.0.0.1", port=args.port, print=None)


if __name__ == "__main__":
    main()
