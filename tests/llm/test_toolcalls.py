"""Tool-call validation: unknown tools, unparseable and schema-breaking arguments, repair."""

from __future__ import annotations

import pytest

from tether.core.errors import InvalidInputError
from tether.core.messages import ToolCall, ToolSpec
from tether.llm import ScriptedModel, tool_call
from tether.llm.toolcalls import chat_with_tool_repair, check_tool_calls, problem_messages

WEATHER = ToolSpec(
    name="get_weather",
    description="Weather for a city",
    parameters={
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "unit": {"type": "string", "enum": ["c", "f"]},
        },
        "required": ["city"],
        "additionalProperties": False,
    },
)
CLOCK = ToolSpec(name="now", description="Current time")
TOOLS = [WEATHER, CLOCK]


def test_valid_calls_have_no_problems() -> None:
    calls = [
        ToolCall(id="a", name="get_weather", arguments={"city": "Oslo", "unit": "c"}),
        ToolCall(id="b", name="now"),
    ]
    assert check_tool_calls(calls, TOOLS) == []


def test_unknown_tool_names_the_available_ones() -> None:
    [problem] = check_tool_calls([ToolCall(id="x", name="get_wether")], TOOLS)
    assert problem.kind == "unknown_tool"
    [message] = problem_messages([problem], TOOLS)
    assert message.role == "tool" and message.tool_call_id == "x"
    assert message.content.startswith("error: there is no tool named 'get_wether'")
    assert "get_weather, now" in message.content and "Fix:" in message.content


def test_unparseable_raw_arguments_are_a_problem() -> None:
    calls = [
        ToolCall(id="1", name="get_weather", raw_arguments='{"city": "Oslo"'),
        ToolCall(id="2", name="get_weather", raw_arguments='["Oslo"]'),
    ]
    first, second = check_tool_calls(calls, TOOLS)
    assert first.kind == second.kind == "unparseable_arguments"
    assert second.errors == ("got a JSON list",)
    text = problem_messages([first])[0].content
    assert "not a JSON object" in text and "one JSON object" in text


def test_raw_arguments_that_parse_are_validated() -> None:
    ok = ToolCall(id="1", name="get_weather", raw_arguments='{"city": "Oslo"}')
    bad = ToolCall(id="2", name="get_weather", raw_arguments='{"town": "Oslo"}')
    problems = check_tool_calls([ok, bad], TOOLS)
    assert [p.call.id for p in problems] == ["2"]
    assert problems[0].kind == "invalid_arguments"


def test_schema_violations_list_every_error() -> None:
    call = ToolCall(id="c1", name="get_weather", arguments={"unit": "kelvin", "extra": 1})
    [problem] = check_tool_calls([call], TOOLS)
    assert problem.kind == "invalid_arguments"
    assert "(root): 'city' is a required property" in problem.errors
    assert "unit: 'kelvin' is not one of ['c', 'f']" in problem.errors
    assert any("'extra' was unexpected" in e for e in problem.errors)
    [message] = problem_messages([problem])
    assert message.tool_call_id == "c1" and message.name == "get_weather"
    assert "invalid arguments for 'get_weather'" in message.content
    assert "'kelvin' is not one of" in message.content


async def test_chat_with_tool_repair_feeds_errors_back_until_valid() -> None:
    bad = [tool_call("get_weather", {"town": "Oslo"}, id="t1"), tool_call("now", id="t2")]
    good = tool_call("get_weather", {"city": "Oslo"}, id="t3")
    model = ScriptedModel([bad, good])
    result = await chat_with_tool_repair(model, "Weather in Oslo?", TOOLS)
    assert result.ok and result.attempts == 2
    assert result.response.tool_calls == (good,)
    second = model.requests[1]
    assert [m.role for m in second.messages] == ["user", "assistant", "tool", "tool"]
    assert second.messages[1].tool_calls == tuple(bad)
    assert second.messages[2].tool_call_id == "t1"
    assert "'city' is a required property" in second.messages[2].content
    assert second.messages[3].tool_call_id == "t2"
    assert second.messages[3].content.startswith("not run")
    assert [t.name for t in second.tools] == ["get_weather", "now"]


async def test_chat_with_tool_repair_gives_up_after_max_repairs() -> None:
    model = ScriptedModel([tool_call("nope", id="n")], cycle=True)
    result = await chat_with_tool_repair(model, "x", TOOLS, max_repairs=1)
    assert not result.ok and result.attempts == 2 and model.calls == 2
    assert result.problems[0].kind == "unknown_tool"


async def test_chat_with_tool_repair_accepts_a_text_answer() -> None:
    model = ScriptedModel(["It is sunny."])
    result = await chat_with_tool_repair(model, "x", TOOLS)
    assert result.ok and result.attempts == 1 and result.response.text == "It is sunny."


async def test_bad_arguments_are_refused_before_calling_the_model() -> None:
    model = ScriptedModel([])
    broken = {
        "name": "broken",
        "parameters": {"type": "object", "properties": {"n": {"type": "nonsense"}}},
    }
    with pytest.raises(InvalidInputError, match=r"not a valid JSON schema \(properties/n/type"):
        await chat_with_tool_repair(model, "x", [WEATHER, broken])
    with pytest.raises(ValueError, match="properties/n/type"):  # a ToolSpec cannot even be built
        ToolSpec.model_validate(broken)
    with pytest.raises(InvalidInputError, match="max_repairs"):
        await chat_with_tool_repair(model, "x", TOOLS, max_repairs=-1)
    assert model.calls == 0
