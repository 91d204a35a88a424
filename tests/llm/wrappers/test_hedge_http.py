"""HedgedModel over a real OpenAI-compatible server: the answer's usage counts every request the
hedged call paid for, not only the winner and the prompts of the requests it cancelled.

Before, a request that had already answered when another won (both answers arrived together),
or that had answered and been refused (a forced tool call answered in text, which the provider
bills), was dropped from the usage: a budget saw half of what the provider billed."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from tests.llm.providers.rawhttp import raw_server, read_request, response_head
from tether.core.errors import ModelResponseError
from tether.llm import Model, ModelRequest, ModelResponse
from tether.llm.providers.openai_compat import OpenAICompatibleModel
from tether.llm.wrappers import HedgedModel, WrapperModel

TOOL = {
    "type": "function",
    "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}},
}


def _completion(usage: tuple[int, int], text: str = "", call: bool = False) -> bytes:
    message: dict[str, Any] = {"role": "assistant", "content": text}
    if call:
        message["tool_calls"] = [
            {"id": "c1", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}
        ]
    return json.dumps(
        {
            "id": "x",
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": usage[0], "completion_tokens": usage[1]},
        }
    ).encode()


def _server(bodies: list[bytes]) -> Callable[..., Any]:
    """Answers the n-th request with ``bodies[n]``."""
    served = iter(bodies)

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await read_request(reader)
            body = next(served)
            head = {"content-type": "application/json", "content-length": str(len(body))}
            writer.write(response_head(200, head) + body)
            await writer.drain()

    return serve


@asynccontextmanager
async def _provider(bodies: list[bytes]) -> AsyncIterator[OpenAICompatibleModel]:
    async with raw_server(_server(bodies)) as url:
        provider = OpenAICompatibleModel("m", base_url=f"{url}/v1", timeout=30)
        try:
            yield provider
        finally:
            await provider.aclose()


class Gated(WrapperModel):
    """Starts its call once ``start`` is set (when given); sets ``done`` when the call ended,
    then waits for ``hold`` (when given) before returning: the tests decide what has happened
    when the hedge looks, without timing anything."""

    def __init__(
        self,
        inner: Model,
        *,
        done: asyncio.Event,
        start: asyncio.Event | None = None,
        hold: asyncio.Event | None = None,
    ) -> None:
        super().__init__(inner)
        self.start, self.done, self.hold = start, done, hold

    async def complete(self, request: ModelRequest) -> ModelResponse:
        if self.start is not None:
            await self.start.wait()
        try:
            response = await self.inner.complete(request)
        finally:
            self.done.set()
        if self.hold is not None:
            await self.hold.wait()
        return response


async def test_when_both_answers_arrive_both_are_charged() -> None:
    bodies = [_completion((100, 40), "first"), _completion((100, 60), "second")]
    async with _provider(bodies) as provider:
        first_in, second_in = asyncio.Event(), asyncio.Event()
        # the first answer is held until the second has arrived too: both are in hand
        first = Gated(provider, done=first_in, hold=second_in)
        second = Gated(provider, done=second_in, start=first_in)
        out = await HedgedModel(first, delay=0.0, hedge_to=second).chat("hi")
    assert out.text == "first" and out.metadata["hedged"]["abandoned"] == 0
    assert (out.usage.input_tokens, out.usage.output_tokens) == (200, 100)


async def test_a_refused_answer_before_the_winner_is_charged() -> None:
    # the first request's answer ignores the forced tool call (refused, billed); the hedge wins
    bodies = [_completion((100, 40), "no tool for you"), _completion((100, 10), call=True)]
    async with _provider(bodies) as provider:
        first_in, second_in = asyncio.Event(), asyncio.Event()
        first = Gated(provider, done=first_in)
        second = Gated(provider, done=second_in, start=first_in)
        hedged = HedgedModel(first, delay=0.0, hedge_to=second)
        out = await hedged.chat("hi", tools=[TOOL], tool_choice="required")
    assert out.tool_calls[0].name == "lookup" and out.metadata["hedged"]["winner"] == 1
    assert (out.usage.input_tokens, out.usage.output_tokens) == (200, 50)


async def test_when_every_request_fails_the_error_carries_what_each_consumed() -> None:
    bodies = [_completion((100, 40), "no tool"), _completion((100, 30), "still no tool")]
    async with _provider(bodies) as provider:
        first_in, second_in = asyncio.Event(), asyncio.Event()
        first = Gated(provider, done=first_in)
        second = Gated(provider, done=second_in, start=first_in)
        hedged = HedgedModel(first, delay=0.0, hedge_to=second)
        try:
            await hedged.chat("hi", tools=[TOOL], tool_choice="required")
        except ModelResponseError as exc:
            error = exc
    assert (error.usage.input_tokens, error.usage.output_tokens) == (200, 70)
