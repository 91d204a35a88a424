"""AnthropicModel against a real HTTP server speaking the Messages API (anthropic_api.py)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
import uvicorn
from pydantic import BaseModel

from tests.llm.providers.anthropic_api import API_KEY, Failure, MessagesApi, Reply
from tether.core.errors import (
    ConfigurationError,
    ModelRateLimitedError,
    ModelRequestError,
    ModelResponseError,
    ModelTransientError,
)
from tether.core.messages import Message, ToolCall, ToolSpec
from tether.llm.providers.anthropic import AnthropicModel
from tether.llm.request import build_request

WEATHER = ToolSpec(
    name="get_weather",
    description="Current weather in a city",
    parameters={
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
)
CLOCK = ToolSpec(name="get_time", description="Current time", parameters={"type": "object"})


class City(BaseModel):
    name: str
    population: int


def _use(block_id: str, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {"type": "tool_use", "id": block_id, "name": name, "input": arguments}


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, MessagesApi]]:
    api = MessagesApi()
    config = uvicorn.Config(api.app(), host="127.0.0.1", port=0, log_level="warning")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, name="anthropic-test-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60  # a hang guard: a loaded machine starts it slowly
    while not srv.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    port = srv.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", api
    finally:
        srv.should_exit = True
        thread.join(10)


@pytest.fixture
def api(server: tuple[str, MessagesApi]) -> MessagesApi:
    server[1].script.clear()
    server[1].requests.clear()
    return server[1]


@pytest.fixture
async def model(server: tuple[str, MessagesApi]) -> AsyncIterator[AnthropicModel]:
    async with AnthropicModel("claude-test", api_key=API_KEY, base_url=server[0]) as m:
        yield m


async def test_text_reply_and_request_shape(api: MessagesApi, model: AnthropicModel) -> None:
    api.script.append(Reply([{"type": "text", "text": "Paris is the capital."}]))
    response = await model.chat(
        [
            Message.system("Be brief."),
            Message.system("Answer in English."),
            Message.user("Capital of France?"),
        ],
        temperature=1.5,
        stop=["\n\n"],
    )
    assert response.text == "Paris is the capital."
    assert response.finish_reason == "stop"
    assert response.model == "anthropic:claude-test"
    assert response.id is not None and response.id.startswith("msg_")
    assert response.usage.input_tokens > 0 and response.usage.output_tokens > 0
    assert not response.usage.estimated
    sent = api.requests[-1]
    assert sent["headers"]["x-api-key"] == API_KEY
    assert sent["headers"]["anthropic-version"] == "2023-06-01"
    body = sent["body"]
    assert body["system"] == "Be brief.\nAnswer in English."
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Capital of France?"}]}
    ]
    assert body["max_tokens"] == 1024
    assert body["temperature"] == 1.0  # clamped to Anthropic's 0..1
    assert body["stop_sequences"] == ["\n\n"]
    assert "tools" not in body


async def test_tool_use_round_trip(api: MessagesApi, model: AnthropicModel) -> None:
    api.script.append(
        Reply(
            [
                {"type": "text", "text": "Checking."},
                _use("toolu_02", "get_weather", {"city": "Oslo"}),
            ],
            stop_reason="tool_use",
        )
    )
    history = [
        Message.system("You are a weather bot."),
        Message.user("Weather in Paris and the time?"),
        Message.assistant(
            "Let me look.",
            (
                ToolCall(id="toolu_a", name="get_weather", arguments={"city": "Paris"}),
                ToolCall(id="toolu_b", name="get_time", arguments={}),
            ),
        ),
        Message.tool("toolu_a", "sunny, 21C"),
        Message.tool("toolu_b", "14:02"),
        Message.user("And in Oslo?"),
    ]
    response = await model.chat(history, tools=[WEATHER, CLOCK], tool_choice="get_weather")
    assert response.text == "Checking."
    assert response.tool_calls == (
        ToolCall(id="toolu_02", name="get_weather", arguments={"city": "Oslo"}),
    )
    assert response.finish_reason == "tool_calls"
    body = api.requests[-1]["body"]
    assert body["system"] == "You are a weather bot."
    assert body["tools"][0] == {
        "name": "get_weather",
        "description": "Current weather in a city",
        "input_schema": WEATHER.parameters,
    }
    assert body["tool_choice"] == {"type": "tool", "name": "get_weather"}
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
    assert body["messages"][1]["content"] == [
        {"type": "text", "text": "Let me look."},
        {"type": "tool_use", "id": "toolu_a", "name": "get_weather", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "toolu_b", "name": "get_time", "input": {}},
    ]
    assert body["messages"][2]["content"] == [
        {"type": "tool_result", "tool_use_id": "toolu_a", "content": "sunny, 21C"},
        {"type": "tool_result", "tool_use_id": "toolu_b", "content": "14:02"},
        {"type": "text", "text": "And in Oslo?"},
    ]


@pytest.mark.parametrize(
    ("choice", "wire"),
    [("auto", {"type": "auto"}), ("required", {"type": "any"}), ("none", {"type": "none"})],
)
async def test_tool_choice_mapping(
    api: MessagesApi, model: AnthropicModel, choice: str, wire: dict[str, str]
) -> None:
    await model.chat("hi", tools=[WEATHER], tool_choice=choice)
    assert api.requests[-1]["body"]["tool_choice"] == wire


async def test_structured_output_forces_a_schema_tool(
    api: MessagesApi, model: AnthropicModel
) -> None:
    api.script.append(
        Reply(
            [_use("toolu_9", "City", {"name": "Oslo", "population": 709000})],
            stop_reason="tool_use",
        )
    )
    response = await model.chat("Largest city of Norway?", response_format=City)
    assert City.model_validate_json(response.text) == City(name="Oslo", population=709000)
    assert response.tool_calls == ()
    assert response.finish_reason == "stop"
    body = api.requests[-1]["body"]
    assert body["tool_choice"] == {"type": "tool", "name": "City"}
    [tool] = body["tools"]
    assert tool["name"] == "City"
    assert tool["input_schema"]["properties"].keys() == {"name", "population"}


async def test_structured_output_beside_real_tools_lets_the_model_pick(
    api: MessagesApi, model: AnthropicModel
) -> None:
    api.script.append(
        Reply(
            [_use("t1", "get_weather", {"city": "Oslo"})],
            stop_reason="tool_use",
        )
    )
    response = await model.chat("Oslo?", tools=[WEATHER], response_format=City)
    assert [c.name for c in response.tool_calls] == ["get_weather"]
    assert response.finish_reason == "tool_calls"
    body = api.requests[-1]["body"]
    assert [t["name"] for t in body["tools"]] == ["get_weather", "City"]
    assert body["tool_choice"] == {"type": "any"}


async def test_streaming_text(api: MessagesApi, model: AnthropicModel) -> None:
    text = "The quick brown fox jumps over the lazy dog."
    api.script.append(Reply([{"type": "text", "text": text}]))
    deltas: list[str] = []
    response = await model.chat("Say the pangram", on_token=deltas.append)
    assert len(deltas) > 3
    assert "".join(deltas) == response.text == text
    assert api.requests[-1]["body"]["stream"] is True
    assert response.usage.input_tokens > 0
    assert response.usage.output_tokens == len(deltas)
    assert response.timing.ttft is not None and response.timing.ttft > 0
    assert response.timing.tpot is not None and response.timing.tpot > 0
    assert response.id is not None and response.id.startswith("msg_")


async def test_streaming_tool_use_and_structured_output(
    api: MessagesApi, model: AnthropicModel
) -> None:
    api.script.append(
        Reply(
            [
                {"type": "text", "text": "One moment."},
                _use("toolu_s", "get_weather", {"city": "Lisbon, PT"}),
            ],
            stop_reason="tool_use",
        )
    )
    chunks = [c async for c in model.stream(build_request("weather?", tools=[WEATHER]))]
    final = chunks[-1].response
    assert final is not None
    assert "".join(c.delta for c in chunks) == final.text == "One moment."
    assert final.tool_calls == (
        ToolCall(id="toolu_s", name="get_weather", arguments={"city": "Lisbon, PT"}),
    )
    assert final.finish_reason == "tool_calls"

    api.script.append(
        Reply(
            [_use("t", "City", {"name": "Lisbon", "population": 545000})],
            stop_reason="tool_use",
        )
    )
    deltas: list[str] = []
    response = await model.chat(
        "Capital of Portugal?", response_format=City, stream=True, on_token=deltas.append
    )
    assert len(deltas) > 3
    assert "".join(deltas) == response.text
    assert City.model_validate_json(response.text).population == 545000
    assert response.finish_reason == "stop"


async def test_structured_output_cut_short_says_length(
    api: MessagesApi, model: AnthropicModel
) -> None:
    """The forced output tool is the answer (``stop``, not ``tool_calls``), but an answer cut
    off by max_tokens still says ``length``, streamed or not."""
    for stream in (False, True):
        api.script.append(Reply([_use("t", "City", {"name": "Lisbon"})], stop_reason="max_tokens"))
        response = await model.chat("Capital?", response_format=City, stream=stream)
        assert response.finish_reason == "length"
        assert response.text == '{"name":"Lisbon"}'


async def test_rate_limit_with_retry_after(api: MessagesApi, model: AnthropicModel) -> None:
    api.script.append(
        Failure(
            429,
            "rate_limit_error",
            "Number of requests has exceeded your rate limit",
            {"retry-after": "7"},
        )
    )
    with pytest.raises(ModelRateLimitedError) as info:
        await model.chat("hi")
    assert info.value.retry_after == 7.0
    assert info.value.retryable
    assert "rate limit" in str(info.value)

    when = datetime.now(UTC) + timedelta(seconds=30)
    api.script.append(
        Failure(
            429,
            "rate_limit_error",
            "slow down",
            {"retry-after": format_datetime(when, usegmt=True)},
        )
    )
    with pytest.raises(ModelRateLimitedError) as info:
        await model.chat("hi", stream=True)
    assert info.value.retry_after is not None and 25 < info.value.retry_after <= 30


async def test_overloaded_529_is_transient(api: MessagesApi, model: AnthropicModel) -> None:
    api.script.append(Failure(529, "overloaded_error", "Overloaded"))
    with pytest.raises(ModelTransientError) as info:
        await model.chat("hi")
    assert info.value.status == 529 and info.value.retryable
    assert "overloaded_error: Overloaded" in str(info.value)


async def test_mid_stream_error_event(api: MessagesApi, model: AnthropicModel) -> None:
    api.script.append(Failure(200, "overloaded_error", "Overloaded", mid_stream=True))
    with pytest.raises(ModelTransientError, match="Overloaded"):
        await model.chat("hi", stream=True)


async def test_bad_request_carries_the_api_message(api: MessagesApi, model: AnthropicModel) -> None:
    api.script.append(
        Failure(400, "invalid_request_error", "prompt is too long: 210000 tokens > 200000 maximum")
    )
    with pytest.raises(ModelRequestError) as info:
        await model.chat("hi")
    assert info.value.status == 400 and not info.value.retryable
    assert "prompt is too long: 210000 tokens" in str(info.value)


async def test_wrong_key_is_a_request_error(server: tuple[str, MessagesApi]) -> None:
    async with AnthropicModel("claude-test", api_key="nope", base_url=server[0]) as m:
        with pytest.raises(ModelRequestError, match="check the API key") as info:
            await m.chat("hi")
    assert info.value.status == 401
    assert "authentication_error: invalid x-api-key" in str(info.value)


async def test_malformed_body_is_a_response_error(api: MessagesApi, model: AnthropicModel) -> None:
    api.script.append(b"{not json")
    with pytest.raises(ModelResponseError):
        await model.chat("hi")
    api.script.append(b'{"id": "msg_x", "type": "message"}')
    with pytest.raises(ModelResponseError, match="without content"):
        await model.chat("hi")
    api.script.append(b'{"type": "message", "content": [{"type": "tool_use", "id": 1}]}')
    with pytest.raises(ModelResponseError, match="without a tool_use id and name"):
        await model.chat("hi")
    # a token count that is not one is no report: tether counts the call (test_usage_reports)
    api.script.append(b'{"type": "message", "content": [], "usage": {"input_tokens": "lots"}}')
    counted = await model.chat("hi")
    assert counted.usage.estimated and counted.usage.input_tokens > 0


def test_bad_settings_are_configuration_errors() -> None:
    with pytest.raises(ConfigurationError, match="max_tokens must be at least 1"):
        AnthropicModel("claude-test", api_key=API_KEY, max_tokens=0)
    with pytest.raises(ConfigurationError, match="timeout must be a positive number"):
        AnthropicModel("claude-test", api_key=API_KEY, timeout=0)


def test_a_model_outlives_its_event_loop(server: tuple[str, MessagesApi]) -> None:
    """Each ``asyncio.run`` is a new event loop; the model's own client, whose connections
    belonged to the first, is replaced rather than failing with "Event loop is closed"."""
    model = AnthropicModel("claude-test", api_key=API_KEY, base_url=server[0])
    first = asyncio.run(model.chat("hi"))
    second = asyncio.run(model.chat("hi", stream=True))
    assert first.text == second.text == "ok"

    async def close() -> bool:
        await model.chat("hi")
        client = model.client
        await model.aclose()
        return client.is_closed

    assert asyncio.run(close())


async def test_client_ownership(server: tuple[str, MessagesApi]) -> None:
    model = AnthropicModel("claude-test", api_key=API_KEY, base_url=server[0])
    await model.chat("hi")
    own = model.client
    await model.aclose()
    assert own.is_closed

    async with httpx.AsyncClient() as client:
        async with AnthropicModel(
            "claude-test", api_key=API_KEY, base_url=server[0], client=client
        ) as m:
            await m.chat("hi")
        assert not client.is_closed
