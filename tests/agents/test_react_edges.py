"""ReAct against models that misbehave: repeated tool-call ids, empty answers. Durable runs on
SQLite, as a user would run them."""

from __future__ import annotations

from pathlib import Path

from tests.agents.tools_fixture import executor
from tether import Runtime
from tether.agents import ReactOptions, react_agent
from tether.llm import ScriptedModel, tool_call


def call_ids(messages: list[dict]) -> list[str]:
    return [c["id"] for m in messages if m["role"] == "assistant" for c in m["tool_calls"]]


async def test_a_tool_call_id_repeated_in_one_answer_gets_ids_of_its_own(tmp_path: Path) -> None:
    # some OpenAI-compatible servers number calls per answer ("call_0") or repeat an id: each
    # observation must still answer exactly one call, or the next request is refused
    model = ScriptedModel(
        [
            [
                tool_call("population", {"city": "Paris"}, id="call_0"),
                tool_call("population", {"city": "Lyon"}, id="call_0"),
            ],
            [tool_call("add", {"a": 1, "b": 2}, id="call_0")],  # and again in the next answer
            "Paris 2100000, Lyon 520000.",
        ]
    )
    agent = react_agent(ReactOptions(model=model, tools=executor()), name="react_dup_ids")
    async with Runtime(f"sqlite:///{tmp_path}/r.db", workflows=[agent], recover=False) as rt:
        res = await rt.run(agent, {"task": "Populations of Paris and Lyon?"})
    assert res.status.value == "COMPLETED", res.error
    messages = res.state["messages"]
    ids = call_ids(messages)
    assert len(ids) == 3 and len(set(ids)) == 3, ids
    assert ids[0] == "call_0"  # a first use keeps the model's id
    answered = {m["tool_call_id"]: m["content"] for m in messages if m["role"] == "tool"}
    assert answered == {ids[0]: "2100000", ids[1]: "520000", ids[2]: "3"}
    # what the model was sent carries the same, unique ids
    sent = model.requests[-1].messages
    sent_ids = [c.id for m in sent for c in m.tool_calls]
    assert sent_ids == ids
    assert [m.tool_call_id for m in sent if m.role == "tool"] == ids


async def test_repeated_ids_in_a_repair_round_get_each_call_its_own_error(tmp_path: Path) -> None:
    model = ScriptedModel(
        [
            [
                tool_call("population", {"city": "Paris"}, id="c"),
                tool_call("add", {"a": "one", "b": 2}, id="c"),  # invalid, same id
            ],
            [tool_call("add", {"a": 1, "b": 2}, id="c")],
            "3",
        ]
    )
    agent = react_agent(ReactOptions(model=model, tools=executor()), name="react_dup_repair")
    async with Runtime(f"sqlite:///{tmp_path}/r.db", workflows=[agent], recover=False) as rt:
        res = await rt.run(agent, {"task": "1+2?"})
    assert res.status.value == "COMPLETED", res.error
    repair = model.requests[1].messages
    calls = [c.id for c in repair[-3].tool_calls]
    assert len(set(calls)) == 2
    tool_msgs = {m.tool_call_id: m.content for m in repair if m.role == "tool"}
    assert tool_msgs[calls[0]].startswith("not run")
    assert "invalid arguments for 'add'" in tool_msgs[calls[1]]
    ids = call_ids(res.state["messages"])
    assert len(ids) == len(set(ids))


async def test_an_empty_answer_is_asked_again_not_taken_as_the_answer(tmp_path: Path) -> None:
    model = ScriptedModel(["", "Order 1234 has shipped."])
    agent = react_agent(ReactOptions(model=model, tools=executor()), name="react_empty_once")
    async with Runtime(f"sqlite:///{tmp_path}/r.db", workflows=[agent], recover=False) as rt:
        res = await rt.run(agent, {"task": "Where is order 1234?"})
    assert res.status.value == "COMPLETED", res.error
    assert res.state["stopped"] == "answered"
    assert res.state["answer"] == "Order 1234 has shipped."
    assert res.state["repairs"] == 1 and res.state["model_calls"] == 2
    nudge = model.requests[1].messages[-1]
    assert nudge.role == "user" and "empty" in nudge.content


async def test_an_answer_left_empty_stops_the_loop_saying_so(tmp_path: Path) -> None:
    model = ScriptedModel(["", "  \n"])
    agent = react_agent(ReactOptions(model=model, tools=executor()), name="react_empty")
    async with Runtime(f"sqlite:///{tmp_path}/r.db", workflows=[agent], recover=False) as rt:
        res = await rt.run(agent, {"task": "Where is order 1234?"})
    assert res.status.value == "COMPLETED", res.error
    assert res.state["stopped"] == "empty_answer" and res.state["answer"] == ""
    assert res.state["model_calls"] == 2
