"""Constrained-JSON tool calling: the schema, prompt and parsing the local model relies on."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest
from pydantic import BaseModel

from tether.core.messages import Message, ToolCall, ToolSpec
from tether.llm.providers.constrained import plan
from tether.llm.request import build_request


class Address(BaseModel):
    street: str
    city: str


class Order(BaseModel):
    item: str
    ship_to: Address


WEATHER = ToolSpec(
    name="get_weather",
    description="Weather for a city.",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
SHIP = ToolSpec(name="ship", description="Ship an order.", parameters=Order.model_json_schema())


def _plan(messages: Any = "hi", **options: Any) -> Any:
    return plan(build_request(messages, **options))


def _valid(schema: dict[str, Any], value: Any) -> bool:
    return jsonschema.Draft202012Validator(schema).is_valid(value)


def test_no_tools_no_format_is_free_text() -> None:
    p = _plan("hello", tools=[WEATHER], tool_choice="none")
    assert p.schema is None and not p.tools
    assert p.messages == [{"role": "user", "content": "hello"}]
    assert p.parse("just text") == ("just text", ())


def test_auto_offers_every_tool_or_an_answer() -> None:
    p = _plan(tools=[WEATHER, SHIP])
    assert p.schema is not None
    call = {"tool": "get_weather", "arguments": {"city": "Oslo"}}
    order = {"item": "book", "ship_to": {"street": "Main 1", "city": "Oslo"}}
    assert _valid(p.schema, call)
    assert _valid(p.schema, {"tool": "ship", "arguments": order})
    assert _valid(p.schema, {"answer": "hi"})
    assert not _valid(p.schema, {"tool": "get_weather", "arguments": {}})
    assert not _valid(p.schema, {"tool": "delete_all", "arguments": {}})
    assert not _valid(p.schema, {"tool": "ship", "arguments": {"item": "book", "ship_to": {}}})
    system = p.messages[0]
    assert system["role"] == "system"
    assert "get_weather: Weather for a city." in system["content"]
    assert '{"answer": <your answer>}' in system["content"]


def test_nested_defs_are_hoisted_and_renamed() -> None:
    p = _plan(tools=[SHIP, WEATHER], tool_choice="required")
    assert p.schema is not None
    assert set(p.schema["$defs"]) == {"t0_Address"}
    ship_args = p.schema["anyOf"][0]["properties"]["arguments"]
    assert ship_args["properties"]["ship_to"] == {"$ref": "#/$defs/t0_Address"}
    assert ship_args["additionalProperties"] is False  # closed for the grammar
    assert len(p.schema["anyOf"]) == 2  # no answer variant when a call is required
    assert not _valid(p.schema, {"answer": "hi"})


def test_a_named_tool_is_the_only_choice() -> None:
    p = _plan(tools=[WEATHER, SHIP], tool_choice="get_weather")
    assert p.schema is not None and len(p.schema["anyOf"]) == 1
    assert "ship" not in p.messages[0]["content"]


def test_response_format_alone_constrains_to_its_schema() -> None:
    p = _plan("give me an address", response_format=Address)
    assert p.schema is not None and not p.tools
    assert p.schema["additionalProperties"] is False
    assert "JSON schema" in p.messages[0]["content"]
    assert p.parse('{"street": "a", "city": "b"}') == ('{"street": "a", "city": "b"}', ())


def test_response_format_with_tools_shapes_the_answer() -> None:
    p = _plan(tools=[WEATHER], response_format=Address)
    assert p.schema is not None
    assert _valid(p.schema, {"answer": {"street": "a", "city": "b"}})
    assert not _valid(p.schema, {"answer": "free text"})
    text, calls = p.parse('{"answer": {"street": "a", "city": "b"}}')
    assert json.loads(text) == {"street": "a", "city": "b"} and calls == ()


def test_parse_tool_call_and_answer() -> None:
    p = _plan(tools=[WEATHER])
    text, calls = p.parse('{"tool": "get_weather", "arguments": {"city": "Oslo"}}')
    assert text == "" and len(calls) == 1
    assert calls[0].name == "get_weather" and calls[0].arguments == {"city": "Oslo"}
    assert calls[0].id.startswith("call_")
    other = p.parse('{"tool": "get_weather", "arguments": {"city": "Rome"}}')[1][0]
    assert other.id != calls[0].id
    assert p.parse('{"answer": "It is sunny."}') == ("It is sunny.", ())


def test_cut_off_output_keeps_the_tool_name_and_raw_arguments() -> None:
    p = _plan(tools=[WEATHER])
    text, calls = p.parse('{"tool": "get_weather", "arguments": {"city": "Osl')
    assert text == ""
    assert calls[0].name == "get_weather" and calls[0].arguments == {}
    assert calls[0].raw_arguments == '{"city": "Osl'
    assert p.parse('{"answer": "It is') == ('{"answer": "It is', ())


def test_tool_turns_become_plain_roles() -> None:
    call = ToolCall(id="c1", name="get_weather", arguments={"city": "Oslo"})
    messages = [
        Message.system("Be brief."),
        Message.user("Weather?"),
        Message.assistant("Let me check.", (call,)),
        Message.tool("c1", "Rain.", name="get_weather"),
    ]
    p = _plan(messages, tools=[WEATHER])
    roles = [m["role"] for m in p.messages]
    assert roles == ["system", "user", "assistant", "user"]
    assert p.messages[0]["content"].startswith("Be brief.\n\nYou can call these tools")
    assert p.messages[2]["content"] == (
        'Let me check.\n{"tool": "get_weather", "arguments": {"city": "Oslo"}}'
    )
    assert p.messages[3]["content"] == "Result of tool get_weather (call c1): Rain."


@pytest.mark.parametrize(
    ("choice", "root"),
    [
        ("auto", "root ::= alternative-0 | alternative-1 | alternative-2"),
        ("required", "root ::= alternative-0 | alternative-1"),
        ("get_weather", "root ::= alternative-0"),
    ],
)
def test_the_schema_compiles_to_a_llama_grammar(choice: str, root: str) -> None:
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    p = _plan(tools=[WEATHER, SHIP], tool_choice=choice, response_format=Address)
    grammar = json_schema_to_gbnf(json.dumps(p.schema))
    assert root in grammar.splitlines()
    assert 'alternative-0-tool ::= "\\"get_weather\\""' in grammar
