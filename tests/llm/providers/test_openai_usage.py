"""What an OpenAI-compatible server's streamed answer cost, when the server reports no usage
(llama-cpp-python's server ignores ``stream_options.include_usage``), and forced tool calls
that the server ignores. Against the real ``llama_cpp.server`` and a raw HTTP server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import orjson
import pytest

from tests.llm.providers.conftest import MODEL_ALIAS, smollm2_gguf
from tests.llm.providers.rawhttp import raw_server, read_request, response_head
from tether.core.errors import ModelResponseError
from tether.core.messages import Message, ToolSpec
from tether.llm.pricing import PriceTable
from tether.llm.providers.local import LocalModel
from tether.llm.providers.openai_compat import OpenAICompatibleModel
from tether.llm.providers.prompt_tokens import rough_prompt_tokens
from tether.llm.request import build_request

PROMPT = "Write one sentence about the sea."
WEATHER = ToolSpec(
    name="get_weather",
    description="Get the current weather for a city",
    parameters={
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
)


@pytest.fixture
async def exact(llama_server: str) -> AsyncIterator[OpenAICompatibleModel]:
    """The server's model, counted with a local tokenizer for the same GGUF file."""
    tokenizer = LocalModel(path=smollm2_gguf())
    async with OpenAICompatibleModel(MODEL_ALIAS, base_url=llama_server, tokenizer=tokenizer) as m:
        m.prices = PriceTable({m.name: (1.0, 2.0)})  # $ per million tokens in / out
        yield m


async def test_streamed_usage_is_close_to_what_the_server_counts_unstreamed(
    exact: OpenAICompatibleModel,
) -> None:
    # the same call both ways, cut at max_tokens. (Not always the same text: llama.cpp's
    # numbers differ a little when the server reuses the prompt it evaluated last time.)
    whole = await exact.chat(PROMPT, max_tokens=14, temperature=0.0, seed=1)
    streamed = await exact.chat(PROMPT, max_tokens=14, temperature=0.0, seed=1, stream=True)
    assert whole.finish_reason == streamed.finish_reason == "length"
    assert not whole.usage.estimated and whole.usage.input_tokens > 30  # template included
    # counted by tether (the server sent none), so marked estimated, but close to the truth
    assert streamed.usage.estimated
    assert streamed.usage.input_tokens == whole.usage.input_tokens
    assert abs(streamed.usage.output_tokens - whole.usage.output_tokens) <= 1
    assert whole.cost is not None and streamed.cost is not None
    assert streamed.cost == pytest.approx(whole.cost, rel=0.1)


@pytest.mark.parametrize("system", [False, True])
async def test_without_a_tokenizer_the_servers_tokenizer_counts_the_prompt(
    llama_server: str, system: bool
) -> None:
    # the server's tokenizer over the ChatML text, plus what SmolLM2's template adds (a default
    # system prompt when there is none), learnt from one tiny unstreamed call
    messages = [Message.system("You are brief.")] if system else []
    messages.append(Message.user(PROMPT))
    async with OpenAICompatibleModel(MODEL_ALIAS, base_url=llama_server) as m:
        whole = await m.chat(messages, max_tokens=10, temperature=0.0)
        streamed = await m.chat(messages, max_tokens=10, temperature=0.0, stream=True)
        again = await m.chat(messages, max_tokens=10, temperature=0.0, stream=True)
        learnt = dict(m._prompt_counter.template_extra)
    assert whole.finish_reason == streamed.finish_reason == "length"
    assert streamed.usage.estimated
    assert streamed.usage.input_tokens == whole.usage.input_tokens
    assert abs(streamed.usage.output_tokens - whole.usage.output_tokens) <= 1
    assert again.usage.input_tokens == whole.usage.input_tokens
    assert learnt == {system: 0 if system else 21}  # learnt once, for this shape only
    assert whole.usage.input_tokens > rough_prompt_tokens(build_request(messages))


async def test_a_server_without_a_tokenizer_gets_a_rough_count_asked_once() -> None:
    paths: list[str] = []
    pieces = ["The", " sea", " is", " blue", "."]

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head, _ = await read_request(reader)
        path = head.split(b" ")[1].decode()
        paths.append(path)
        if path != "/v1/chat/completions":
            writer.write(response_head(404, {"content-length": "0"}))
            await writer.drain()
            return
        events = [{"choices": [{"index": 0, "delta": {"role": "assistant"}}]}]
        events += [{"choices": [{"index": 0, "delta": {"content": p}}]} for p in pieces]
        events += [{"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}]
        body = b"".join(b"data: " + orjson.dumps(e) + b"\n\n" for e in events)
        body += b"data: [DONE]\n\n"
        writer.write(
            response_head(
                200, {"content-type": "text/event-stream", "content-length": str(len(body))}
            )
            + body
        )
        await writer.drain()

    async with raw_server(handler) as url, OpenAICompatibleModel("m", base_url=url + "/v1") as m:
        first = await m.chat(PROMPT, stream=True)
        second = await m.chat(PROMPT, stream=True)
    assert first.text == "The sea is blue."
    assert first.usage.estimated and first.usage.output_tokens == len(pieces)
    assert first.usage.input_tokens == rough_prompt_tokens(build_request(PROMPT))
    assert second.usage == first.usage
    assert paths.count("/extras/tokenize/count") == 1  # not asked again once it was missing
    assert paths.count("/v1/chat/completions") == 2  # no probe call without a tokenizer


async def test_a_required_tool_call_answered_in_text_is_an_error(llama_server: str) -> None:
    # llama-cpp-python's server ignores tool_choice="required" and answers in text
    async with OpenAICompatibleModel(MODEL_ALIAS, base_url=llama_server) as m:
        for stream in (False, True):
            with pytest.raises(ModelResponseError, match="tool_choice='required'") as info:
                await m.chat(
                    "What is the weather in Paris?",
                    tools=[WEATHER],
                    tool_choice="required",
                    max_tokens=12,
                    temperature=0.0,
                    stream=stream,
                )
            assert info.value.retryable and info.value.model == f"openai-compatible:{MODEL_ALIAS}"
            assert "answered with text" in str(info.value)
        # a named tool is honoured by the server: no error
        out = await m.chat(
            "What is the weather in Paris?",
            tools=[WEATHER],
            tool_choice="get_weather",
            max_tokens=48,
            temperature=0.0,
        )
        assert [c.name for c in out.tool_calls] == ["get_weather"]
