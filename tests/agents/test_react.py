"""ReAct: the loop's structure, tool-argument repair, bounded iterations, budgets."""

from __future__ import annotations

import pytest

from tests.agents.tools_fixture import executor
from tether import Runtime
from tether.agents import ReactOptions, react_agent
from tether.core.errors import ConfigurationError
from tether.core.messages import ToolCall
from tether.governance import Budget, Governance
from tether.llm import ScriptedModel, tool_call
from tether.store.memory import MemoryStore


async def test_thought_tool_observation_then_answer() -> None:
    model = ScriptedModel(
        [
            tool_call("population", {"city": "Paris"}),
            tool_call("population", {"city": "Lyon"}),
            "Paris has 2100000 people and Lyon 520000.",
        ]
    )
    agent = react_agent(ReactOptions(model=model, tools=executor()))
    final = await agent.ainvoke({"task": "Populations of Paris and Lyon?"})
    assert final["stopped"] == "answered"
    assert final["answer"].startswith("Paris has 2100000")
    assert final["model_calls"] == 3 and final["tool_calls"] == 2
    observations = [m for m in final["messages"] if m["role"] == "tool"]
    assert [o["content"] for o in observations] == ["2100000", "520000"]
    # the third call saw both observations
    assert [m.role for m in model.requests[2].messages][-4:] == ["assistant", "tool"] * 2
    assert final["tokens"] > 0


async def test_invalid_arguments_get_one_repair_round_with_the_error() -> None:
    model = ScriptedModel(
        [
            ToolCall(id="c1", name="population", raw_arguments='{"city": "Par'),  # not JSON
            tool_call("population", {"city": "Paris"}),
            "2100000",
        ]
    )
    final = await react_agent(ReactOptions(model=model, tools=executor())).ainvoke(
        {"task": "Population of Paris?"}
    )
    assert final["answer"] == "2100000" and final["repairs"] == 1
    repair_prompt = model.requests[1].messages[-1]
    assert repair_prompt.role == "tool" and "not a JSON object" in repair_prompt.content
    assert final["iterations"] == 2 and final["model_calls"] == 3


async def test_schema_violation_left_after_the_repair_goes_back_as_an_observation() -> None:
    bad = tool_call("add", {"a": "one", "b": 2})
    model = ScriptedModel(
        [bad, tool_call("add", {"a": "one"}), tool_call("add", {"a": 1, "b": 2}), "3"]
    )
    final = await react_agent(ReactOptions(model=model, tools=executor(), max_repairs=1)).ainvoke(
        {"task": "1+2?"}
    )
    assert final["answer"] == "3"
    errors = [m["content"] for m in final["messages"] if m["role"] == "tool"]
    assert "invalid arguments for 'add'" in errors[0] and errors[1] == "3"
    assert final["tool_calls"] == 1  # the invalid call never ran


async def test_iterations_are_bounded() -> None:
    model = ScriptedModel([tool_call("add", {"a": 1, "b": 1})], cycle=True)
    final = await react_agent(
        ReactOptions(model=model, tools=executor(), max_iterations=3)
    ).ainvoke({"task": "loop forever"})
    assert final["stopped"] == "max_iterations" and final["answer"] == ""
    assert model.calls == 3 and final["tool_calls"] == 2


async def test_the_agent_is_budgeted_like_any_run() -> None:
    model = ScriptedModel([tool_call("add", {"a": 1, "b": 1})], cycle=True)
    gov = Governance(budget=Budget(model_calls=2))
    agent = react_agent(
        ReactOptions(model=model, tools=executor(), max_iterations=10, governance=gov),
        name="react_budgeted",
    )
    async with Runtime(MemoryStore(), recover=False) as rt:
        res = await rt.run(agent, {"task": "loop"})
    assert res.status.value == "ESCALATED"
    assert res.escalation is not None and res.escalation["kind"] == "budget"
    assert model.calls == 2  # the third call was refused before it ran


def test_bad_options_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="max_iterations"):
        ReactOptions(model=ScriptedModel([]), tools=executor(), max_iterations=0)
    with pytest.raises(ConfigurationError, match="ToolExecutor"):
        ReactOptions(model=ScriptedModel([]), tools=[])  # type: ignore[arg-type]
