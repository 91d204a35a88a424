"""Tool names the providers' APIs refuse (``tether.llm.providers.tool_names``).

OpenAI's and Anthropic's APIs take a function name only as ``^[a-zA-Z0-9_-]{1,64}$``; a tether
tool may be ``shop.lookup`` (an ``McpToolset(prefix="shop.")``, as docs/tools.md shows) or
longer. Before, such a request was a 400 ("string does not match pattern") at the first model
call of an agent given those tools. Against a raw HTTP server that refuses what OpenAI refuses,
and the Anthropic API stand-in (which now checks names as the real one does)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from tests.llm.providers.anthropic_api import API_KEY, MessagesApi, Reply
from tests.llm.providers.rawhttp import raw_server, read_request, response_head
from tests.llm.providers.test_anthropic import api, model, server  # noqa: F401 (fixtures)
from tether.core.messages import Message, ToolCall, ToolSpec
from tether.llm.providers.anthropic import AnthropicModel
from tether.llm.providers.openai_compat import OpenAICompatibleModel
from tether.llm.providers.tool_names import WireNames, wire_name
from tether.llm.types import ModelRequest

OPENAI_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
PARAMS = {"type": "object", "properties": {"sku": {"type": "string"}}, "required": ["sku"]}
DOTTED = ToolSpec(name="shop.lookup", description="Look a product up", parameters=PARAMS)
PLAIN = ToolSpec(name="shop_lookup", description="Another tool", parameters=PARAMS)
LONG = ToolSpec(name="crm.v2." + "x" * 57, description="A long name", parameters=PARAMS)
HISTORY = [
    Message.user("Is SKU 1 in stock?"),
    Message.assistant("", (ToolCall(id="c1", name="shop.lookup", arguments={"sku": "1"}),)),
    Message.tool("c1", "yes", name="shop.lookup"),
    Message.user("And SKU 2?"),
]


def test_wire_names() -> None:
    long = "crm." + "x" * 80  # longer than a ToolSpec takes: a name of another source
    given = ["shop.lookup", "shop_lookup", LONG.name, "búsqueda", long]
    names = WireNames(given)
    wires = [names.out(n) for n in given]
    assert wires[1] == "shop_lookup" and wires[3] == "b_squeda"
    assert wires[0].startswith("shop_lookup_") and len(wires[0]) == len("shop_lookup_") + 8
    assert wires[2] == "crm_v2_" + "x" * 57
    assert len(wires[4]) == 64 and wires[4].startswith("crm_xxx")
    assert all(OPENAI_NAME.fullmatch(w) for w in wires) and len(set(wires)) == 5
    assert [names.back(w) for w in wires] == given
    assert wire_name("get_weather") == "get_weather"


def _refusal(body: dict[str, Any]) -> str | None:
    """What OpenAI's API answers 400 to (the names only)."""
    names = [t["function"]["name"] for t in body.get("tools", ())]
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        names.append(choice["function"]["name"])
    for m in body["messages"]:
        names += [c["function"]["name"] for c in m.get("tool_calls") or ()]
    bad = [n for n in names if not OPENAI_NAME.fullmatch(n)]
    if bad:
        return f"Invalid 'tools[0].function.name': string does not match pattern: {bad}"
    who = [m["name"] for m in body["messages"] if "name" in m]
    bad = [n for n in who if not OPENAI_NAME.fullmatch(n)]
    return f"Invalid 'messages[0].name': string does not match pattern: {bad}" if bad else None


@pytest.fixture
async def openai_api() -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    """An OpenAI-style server that checks names and calls the first tool it was given."""
    seen: list[dict[str, Any]] = []

    async def handle(reader: Any, writer: Any) -> None:
        _, raw = await read_request(reader)
        body = orjson.loads(raw)
        seen.append(body)
        refused = _refusal(body)
        if refused:
            payload = orjson.dumps({"error": {"message": refused, "type": "invalid_request_error"}})
            status = 400
        elif body.get("stream"):
            delta = {
                "index": 0,
                "id": "call_9",
                "type": "function",
                "function": {
                    "name": body["tools"][0]["function"]["name"],
                    "arguments": '{"sku":"2"}',
                },
            }
            chunks = [
                {"id": "c", "choices": [{"index": 0, "delta": {"tool_calls": [delta]}}]},
                {"id": "c", "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
                {"id": "c", "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 3}},
            ]
            payload = b"".join(b"data: " + orjson.dumps(c) + b"\n\n" for c in chunks)
            payload += b"data: [DONE]\n\n"
            head = {"Content-Type": "text/event-stream", "Content-Length": str(len(payload))}
            writer.write(response_head(200, {**head, "Connection": "close"}) + payload)
            await writer.drain()
            return
        else:
            call = {
                "id": "call_9",
                "type": "function",
                "function": {
                    "name": body["tools"][0]["function"]["name"],
                    "arguments": '{"sku":"2"}',
                },
            }
            message = {"role": "assistant", "content": None, "tool_calls": [call]}
            payload = orjson.dumps(
                {
                    "id": "chatcmpl-1",
                    "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls"}],
                    "usage": {"prompt_tokens": 5, "completion_tokens": 3},
                }
            )
            status = 200
        head = {"Content-Type": "application/json", "Content-Length": str(len(payload))}
        writer.write(response_head(status, {**head, "Connection": "close"}) + payload)
        await writer.drain()

    async with raw_server(handle) as url:
        yield url + "/v1", seen


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
async def test_openai_gets_names_it_takes_and_the_call_comes_back_named_as_the_tool(
    openai_api: tuple[str, list[dict[str, Any]]], stream: bool
) -> None:
    url, seen = openai_api
    async with OpenAICompatibleModel("gpt-test", base_url=url, api_key="k") as m:
        response = await m.chat(
            HISTORY, tools=[DOTTED, PLAIN, LONG], tool_choice="shop.lookup", stream=stream
        )
    assert response.tool_calls == (
        ToolCall(id="call_9", name="shop.lookup", arguments={"sku": "2"}),
    )
    body = seen[-1]
    sent = [t["function"]["name"] for t in body["tools"]]
    assert sent[1] == "shop_lookup" and sent[0] != sent[1] and sent[0].startswith("shop_lookup_")
    assert body["tool_choice"] == {"type": "function", "function": {"name": sent[0]}}
    assert body["messages"][1]["tool_calls"][0]["function"]["name"] == sent[0]


async def test_openai_names_that_need_nothing_go_as_they_are(
    openai_api: tuple[str, list[dict[str, Any]]],
) -> None:
    url, seen = openai_api
    async with OpenAICompatibleModel("gpt-test", base_url=url, api_key="k") as m:
        response = await m.chat("SKU 2?", tools=[PLAIN])
    assert response.tool_calls[0].name == "shop_lookup"
    assert [t["function"]["name"] for t in seen[-1]["tools"]] == ["shop_lookup"]


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
async def test_anthropic_gets_names_it_takes(
    api: MessagesApi,  # noqa: F811
    model: AnthropicModel,  # noqa: F811
    stream: bool,
) -> None:
    api.script.append(
        Reply(
            [{"type": "tool_use", "id": "toolu_9", "name": "shop_lookup", "input": {"sku": "2"}}],
            stop_reason="tool_use",
        )
    )
    response = await model.chat(HISTORY, tools=[DOTTED, LONG], stream=stream)
    assert response.tool_calls == (
        ToolCall(id="toolu_9", name="shop.lookup", arguments={"sku": "2"}),
    )
    body = api.requests[-1]["body"]
    assert [t["name"] for t in body["tools"]] == ["shop_lookup", "crm_v2_" + "x" * 57]
    assert body["messages"][1]["content"][0]["name"] == "shop_lookup"
    assert api.requests[-1]["headers"]["x-api-key"] == API_KEY


PEOPLE = [
    Message.system("Two reviewers and a bot discuss a pull request."),
    Message(role="user", content="Looks good to me.", name="Ann Lee"),
    Message(role="user", content="Not yet: tests.", name="Ann_Lee"),
    Message(role="assistant", content="I will add them.", name="review-bot"),
    Message(role="user", content="Thanks!", name="José O'Neil " + "x" * 70),
]


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
async def test_openai_gets_participant_names_it_takes(
    openai_api: tuple[str, list[dict[str, Any]]], stream: bool
) -> None:
    """A message's ``name`` (who spoke) is held to the function-name pattern by OpenAI's API:
    "Ann Lee" was sent as it is and the whole call was a 400. Names it takes go as they are;
    another is made one, distinct from every other participant's."""
    url, seen = openai_api
    async with OpenAICompatibleModel("gpt-test", base_url=url, api_key="k") as m:
        response = await m.chat(PEOPLE, tools=[PLAIN], stream=stream)
    assert response.tool_calls[0].name == "shop_lookup"
    sent = [m.get("name") for m in seen[-1]["messages"]]
    assert sent[0] is None and sent[2:4] == ["Ann_Lee", "review-bot"]
    assert sent[1] != "Ann_Lee" and sent[1].startswith("Ann_Lee_")
    assert len(sent[4]) == 64 and sent[4].startswith("Jos__O_Neil_xxx")
    assert all(OPENAI_NAME.fullmatch(n) for n in sent[1:])
    again = WireNames.of(ModelRequest(messages=tuple(PEOPLE)))
    assert (
        again is not None
        and again.outbound(ModelRequest(messages=tuple(PEOPLE))).messages[1].name == sent[1]
    )  # the same name every time: a conversation's history stays one


async def test_anthropic_sends_no_participant_names(
    api: MessagesApi,  # noqa: F811
    model: AnthropicModel,  # noqa: F811
) -> None:
    """The Messages API has no ``name`` on a message (it refuses one): who spoke stays out."""
    api.script.append(Reply([{"type": "text", "text": "ok"}]))
    response = await model.chat(PEOPLE)
    assert response.text == "ok"
    body = api.requests[-1]["body"]
    assert all(set(m) == {"role", "content"} for m in body["messages"])
