"""The patterns on a thread: a follow-up run (``thread_id=``) is a run of its own. ReAct carries
the conversation; no pattern answers from the previous run's results, stops on its counters or
leaves a model call unanswered in what it carries over."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.agents.tools_fixture import executor
from tether import Runtime, Workflow
from tether.agents import (
    BlackboardOptions,
    BoardOptions,
    KnowledgeSource,
    ReactOptions,
    ReflectionOptions,
    RewooOptions,
    Specialist,
    SupervisorOptions,
    blackboard,
    governance_board,
    react_agent,
    reflection_agent,
    rewoo_agent,
    supervisor_agent,
)
from tether.agents.react import DEFAULT_SYSTEM
from tether.core.errors import ConfigurationError
from tether.core.lifecycle import RunStatus
from tether.llm import FunctionModel, ScriptedModel, tool_call
from tether.llm.types import ModelRequest


async def two_runs(
    wf: Workflow, first: dict[str, Any], second: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    async with Runtime("memory://", workflows=[wf]) as rt:
        one = await rt.run(wf, first, thread_id="t")
        two = await rt.run(wf, second, thread_id="t")
    assert one.status is RunStatus.COMPLETED and two.status is RunStatus.COMPLETED
    return one.state, two.state


async def test_react_follow_up_reads_the_conversation_and_has_its_own_iterations() -> None:
    model = ScriptedModel(
        [
            tool_call("population", {"city": "Paris"}),
            "Paris has 2100000 people.",
            tool_call("population", {"city": "Lyon"}),
            "Lyon has 520000 people.",
        ]
    )
    agent = react_agent(ReactOptions(model=model, tools=executor(), max_iterations=2))
    one, two = await two_runs(agent, {"task": "Population of Paris?"}, {"task": "And Lyon?"})
    assert one["stopped"] == "answered" and one["iterations"] == 2
    # two thoughts again: the limit is the run's, not the thread's (2 + 1 would have stopped it)
    assert two["stopped"] == "answered" and two["answer"] == "Lyon has 520000 people."
    assert two["iterations"] == 2 and two["model_calls"] == 2 and two["tool_calls"] == 1
    seen = [(m.role, m.content) for m in model.requests[2].messages]
    # the follow-up comes after the first exchange, each task where it was asked
    assert [r for r, _ in seen] == ["system", "user", "assistant", "tool", "assistant", "user"]
    assert seen[1][1] == "Population of Paris?" and seen[5][1] == "And Lyon?"
    assert [m["role"] for m in two["messages"]].count("user") == 2


async def test_react_stopped_at_its_limit_leaves_no_call_unanswered() -> None:
    model = ScriptedModel(
        [tool_call("add", {"a": 1, "b": 1}), tool_call("add", {"a": 2, "b": 2}), "done"]
    )
    agent = react_agent(ReactOptions(model=model, tools=executor(), max_iterations=2))
    one, two = await two_runs(agent, {"task": "count"}, {"task": "stop now"})
    assert one["stopped"] == "max_iterations" and one["tool_calls"] == 1
    last_call, closing = one["messages"][-2:]
    assert last_call["role"] == "assistant" and last_call["tool_calls"]
    assert closing["role"] == "tool" and closing["tool_call_id"] == last_call["tool_calls"][0]["id"]
    assert closing["content"].startswith("not run:")
    # every call the follow-up's request carries has its answer (providers refuse it otherwise)
    carried = model.requests[2].messages
    asked = {c.id for m in carried for c in m.tool_calls}
    answered = {m.tool_call_id for m in carried if m.role == "tool"}
    assert asked and asked == answered
    assert two["answer"] == "done"


async def test_react_run_started_before_tasks_were_kept_still_reads_its_task() -> None:
    """A run whose messages hold no user turn (begun by an older tether, then resumed here)
    still shows the model its task."""
    model = ScriptedModel(["42"])
    agent = react_agent(ReactOptions(model=model, tools=executor()))
    old_turns = [
        {"role": "assistant", "content": "", "tool_calls": []},
    ]
    final = await agent.ainvoke(
        {"task": "The answer?", "messages": old_turns, "iterations": 1, "next": "think"}
    )
    assert final["answer"] == "42"
    sent = model.requests[0].messages
    assert [m.role for m in sent] == ["system", "user", "assistant"]
    assert sent[1].content == "The answer?"


async def test_rewoo_follow_up_never_answers_from_the_previous_evidence() -> None:
    def plan_for(city: str) -> dict[str, Any]:
        return {"steps": [{"id": "#E1", "tool": "population", "args": {"city": city}}]}

    planner = ScriptedModel([plan_for("Paris"), plan_for("Lyon")], name="planner")
    solver = FunctionModel(lambda r: r.messages[-1].content.split("-> ")[-1], name="solver")
    wf = rewoo_agent(RewooOptions(planner=planner, solver=solver, tools=executor()))
    one, two = await two_runs(wf, {"task": "Paris?"}, {"task": "Lyon?"})
    assert one["answer"] == "2100000" and one["tool_calls"] == 1
    # the same step id #E1 in the new plan: it runs again, for Lyon
    assert two["evidence"] == {"#E1": 520_000} and two["answer"] == "520000"
    assert two["tool_calls"] == 1 and two["waves"] == 1


async def test_supervisor_follow_up_works_its_own_tasks() -> None:
    def plan(task: str) -> dict[str, Any]:
        return {"tasks": [{"id": "t1", "agent": "researcher", "task": task}]}

    boss = ScriptedModel([plan("order 1234"), "one", plan("order 1235"), "two"])

    def research(request: ModelRequest) -> str:
        return f"status of {request.messages[-1].content}"

    specialists = {"researcher": Specialist(FunctionModel(research), "looks orders up")}
    wf = supervisor_agent(SupervisorOptions(supervisor=boss, specialists=specialists))
    one, two = await two_runs(wf, {"task": "order 1234?"}, {"task": "order 1235?"})
    assert one["outputs"] == {"t1": "status of order 1234"}
    assert two["outputs"] == {"t1": "status of order 1235"}
    assert "status of order 1235" in boss.requests[3].messages[-1].content
    assert two["waves"] == 1 and two["model_calls"] == 3


async def test_reflection_follow_up_starts_its_rounds_afresh() -> None:
    def ends_with_period(output: str) -> list[str]:
        return [] if output.endswith(".") else ["end with a full stop"]

    model = ScriptedModel(["a", "b", "c", "d."])
    wf = reflection_agent(ReflectionOptions(generator=model, validator=ends_with_period))
    one, two = await two_runs(wf, {"task": "first"}, {"task": "second"})
    assert one["passed"] is False and one["rounds"] == 3
    # round one of the new task is not a correction of the old task's output
    assert "previous output" not in model.requests[3].messages[-1].content
    assert two["passed"] is True and two["rounds"] == 1 and two["output"] == "d."
    assert [h["output"] for h in two["history"]] == ["d."]


async def test_blackboard_follow_up_works_its_own_board() -> None:
    def parse(board: dict[str, Any]) -> dict[str, Any]:
        return {"numbers": [int(n) for n in re.findall(r"\d+", board["text"])]}

    def total(board: dict[str, Any]) -> dict[str, Any]:
        return {"total": sum(board["numbers"])}

    sources = [
        KnowledgeSource("parse", ("text",), parse),
        KnowledgeSource("total", ("numbers",), total),
    ]
    wf = blackboard(BlackboardOptions(sources, goal=lambda b: "total" in b))
    one, two = await two_runs(wf, {"board": {"text": "3 and 4"}}, {"board": {"text": "5 and 6"}})
    assert one["board"]["total"] == 7
    assert two["board"]["total"] == 11 and two["stopped"] == "goal" and two["turns"] == 2
    assert [e["source"] for e in two["log"]] == ["parse", "total"]


async def test_governance_board_counts_each_runs_calls() -> None:
    ruling = {"decision": "go", "rationale": "fine"}
    models = {
        n: ScriptedModel([text], cycle=True)
        for n, text in (("proposer", "refund it"), ("advocate", "no objection"), ("chair", ruling))
    }
    wf = governance_board(
        BoardOptions(
            proposer=models["proposer"],
            advocate=models["advocate"],
            chair=models["chair"],
            compliance=lambda p: [],
        )
    )
    one, two = await two_runs(wf, {"question": "refund?"}, {"question": "again?"})
    assert one["model_calls"] == two["model_calls"] == 3


async def test_react_history_runs_bounds_what_a_long_thread_sends() -> None:
    model = ScriptedModel(
        [
            "one",
            "two",
            tool_call("population", {"city": "Paris"}),
            "three",
            "four",
        ]
    )
    agent = react_agent(ReactOptions(model=model, tools=executor(), history_runs=1))
    async with Runtime("memory://", workflows=[agent]) as rt:
        for task in ("first", "second", "third", "fourth"):
            final = await rt.run(agent, {"task": task}, thread_id="long")
    contents = [[m.content for m in r.messages if m.role == "user"] for r in model.requests]
    assert contents == [
        ["first"],
        ["first", "second"],
        ["second", "third"],  # the earliest exchange is no longer shown
        ["second", "third"],  # the run's own turns are: its task stays while it works
        ["third", "fourth"],
    ]
    # the state keeps the whole conversation
    assert [m["content"] for m in final.state["messages"] if m["role"] == "user"] == [
        "first",
        "second",
        "third",
        "fourth",
    ]
    sent = model.requests[3].messages
    assert [m.role for m in sent] == ["system", "user", "assistant", "user", "assistant", "tool"]


async def test_react_history_runs_zero_shows_only_the_current_task() -> None:
    model = ScriptedModel(["a", "b"])
    agent = react_agent(ReactOptions(model=model, tools=executor(), history_runs=0))
    async with Runtime("memory://", workflows=[agent]) as rt:
        await rt.run(agent, {"task": "first"}, thread_id="z")
        await rt.run(agent, {"task": "second"}, thread_id="z")
    assert [m.content for m in model.requests[1].messages] == [DEFAULT_SYSTEM, "second"]
    with pytest.raises(ConfigurationError, match="history_runs must be an int >= 0"):
        ReactOptions(model=model, tools=executor(), history_runs=-1)


async def test_react_counters_given_in_the_input_do_not_hide_the_task() -> None:
    model = ScriptedModel(["42"])
    agent = react_agent(ReactOptions(model=model, tools=executor(), max_iterations=5))
    final = await agent.ainvoke({"task": "The answer?", "iterations": 2})
    assert [m.content for m in model.requests[0].messages][1:] == ["The answer?"]
    assert final["answer"] == "42" and final["iterations"] == 3
