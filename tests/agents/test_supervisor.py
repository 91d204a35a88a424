"""Supervisor: assignment, dependency waves, the conflict resolver, handoffs, a workflow
specialist as a child run (hierarchy), synthesis."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TypedDict

import pytest

from tether import END, START, EscalationSignal, Graph, RunStatus, Runtime, interrupt
from tether.agents import (
    Assignment,
    ReactOptions,
    Specialist,
    SupervisorOptions,
    SupervisorState,
    react_agent,
    supervisor_agent,
)
from tether.agents.supervisor_plan import resolve
from tether.core.errors import ConfigurationError, RunFailedError
from tether.llm import FunctionModel, ScriptedModel, tool_call
from tether.llm.types import ModelRequest, ModelResponse, Usage
from tether.store.memory import MemoryStore
from tether.store.sqlite import SqliteStore
from tether.tools import ToolExecutor, tool


def echo(name: str) -> FunctionModel:
    def reply(request: ModelRequest) -> str:
        return f"{name} did: {request.messages[-1].content}"

    return FunctionModel(reply, name=name)


async def test_tasks_run_in_dependency_waves_and_the_supervisor_synthesises() -> None:
    boss = ScriptedModel(
        [
            {
                "tasks": [
                    {"id": "t1", "agent": "researcher", "task": "find the facts"},
                    {"id": "t2", "agent": "analyst", "task": "check the numbers"},
                    {"id": "t3", "agent": "writer", "task": "write it", "depends_on": ["t1", "t2"]},
                ]
            },
            "final report",
        ]
    )
    specialists = {n: Specialist(echo(n), f"the {n}") for n in ("researcher", "analyst", "writer")}
    final = await supervisor_agent(
        SupervisorOptions(supervisor=boss, specialists=specialists)
    ).ainvoke({"task": "a report"})
    assert final["answer"] == "final report" and final["waves"] == 2
    assert final["outputs"]["t1"] == "researcher did: find the facts"
    writer_saw = final["outputs"]["t3"]
    assert "Result of t1: researcher did: find the facts" in writer_saw
    assert "Result of t2: analyst did: check the numbers" in writer_saw
    assert final["conflicts"] == [] and final["model_calls"] == 5
    assert "t3 (writer): writer did: write it" in boss.requests[1].messages[-1].content


def test_the_conflict_resolver_breaks_cycles_and_drops_unknown_dependencies() -> None:
    tasks = [
        Assignment(id="a", agent="x", task="1", depends_on=["c"]),
        Assignment(id="b", agent="x", task="2", depends_on=["a", "zzz"]),
        Assignment(id="c", agent="x", task="3", depends_on=["b"]),
    ]
    resolved, conflicts = resolve(tasks)
    deps = {t.id: t.depends_on for t in resolved}
    assert deps == {"a": ["c"], "b": ["a"], "c": []}  # c, listed last, no longer waits
    assert conflicts[0] == "b depends on unknown task zzz: dependency dropped"
    assert "c no longer waits for b" in conflicts[1]


async def test_a_cycle_in_the_plan_still_runs_with_the_conflict_recorded() -> None:
    boss = ScriptedModel(
        [
            {
                "tasks": [
                    {"id": "a", "agent": "w", "task": "one", "depends_on": ["b"]},
                    {"id": "b", "agent": "w", "task": "two", "depends_on": ["a"]},
                ]
            },
            "done",
        ]
    )
    final = await supervisor_agent(
        SupervisorOptions(supervisor=boss, specialists={"w": Specialist(echo("w"), "worker")})
    ).ainvoke({"task": "x"})
    assert final["answer"] == "done" and final["waves"] == 2
    assert len(final["conflicts"]) == 1 and "b no longer waits for a" in final["conflicts"][0]


async def test_a_specialist_hands_a_task_off() -> None:
    boss = ScriptedModel(
        [{"tasks": [{"id": "t1", "agent": "sales", "task": "fix my login"}]}, "ok"]
    )
    sales = ScriptedModel(["HANDOFF support: this is a technical problem"])
    final = await supervisor_agent(
        SupervisorOptions(
            supervisor=boss,
            specialists={
                "sales": Specialist(sales, "pricing and plans"),
                "support": Specialist(echo("support"), "technical problems"),
            },
        )
    ).ainvoke({"task": "help"})
    assert final["outputs"]["t1"] == "support did: fix my login"
    assert final["handoffs"] == [
        {"task": "t1", "from": "sales", "to": "support", "why": "this is a technical problem"}
    ]


async def test_a_handoff_is_read_against_the_specialists_names() -> None:
    """'**HANDOFF Data Analyst**: ...' was no handoff (the name had to match [A-Za-z0-9_-]+
    exactly, so 'data analyst' or 'billing.eu' could never be handed a task) and the handoff
    text itself became the task's output, given to the synthesis as a result."""
    boss = ScriptedModel([{"tasks": [{"id": "t1", "agent": "sales", "task": "margins"}]}, "ok"])
    sales = ScriptedModel(["**HANDOFF Data Analyst**: numbers are theirs"])
    final = await supervisor_agent(
        SupervisorOptions(
            supervisor=boss,
            specialists={
                "sales": Specialist(sales, "pricing"),
                "data": Specialist(echo("data"), "raw data"),
                "data analyst": Specialist(echo("data analyst"), "analysis"),
            },
        )
    ).ainvoke({"task": "help"})
    assert final["outputs"]["t1"] == "data analyst did: margins"
    assert final["handoffs"] == [
        {"task": "t1", "from": "sales", "to": "data analyst", "why": "numbers are theirs"}
    ]


async def test_a_handoff_to_nobody_goes_back_to_the_specialist() -> None:
    """'HANDOFF ghost: ...' (no such specialist) or a handoff to itself stood as the task's
    output: the specialist is told the name is no other specialist and asked again."""
    boss = ScriptedModel([{"tasks": [{"id": "t1", "agent": "sales", "task": "quote"}]}, "ok"])
    sales = ScriptedModel(["HANDOFF ghost: not mine", "HANDOFF sales: me", "a quote: 10 EUR"])
    final = await supervisor_agent(
        SupervisorOptions(
            supervisor=boss,
            specialists={
                "sales": Specialist(sales, "pricing"),
                "support": Specialist(echo("support"), "technical problems"),
            },
        )
    ).ainvoke({"task": "help"})
    assert final["outputs"]["t1"] == "a quote: 10 EUR" and final["handoffs"] == []
    told = sales.requests[1].messages[-1].content
    assert "'ghost' is not another specialist" in told and "['support']" in told
    assert final["model_calls"] == 1 + 3 + 1


async def test_a_workflow_specialist_runs_as_a_child_run() -> None:
    team = Graph(SupervisorState, name="sub_team")
    team.add_node("work", lambda s: {"answer": f"team says {s['task']}"})
    team.add_edge(START, "work").add_edge("work", END)
    boss = ScriptedModel([{"tasks": [{"id": "t1", "agent": "team", "task": "dig"}]}, "ok"])
    wf = supervisor_agent(
        SupervisorOptions(
            supervisor=boss, specialists={"team": Specialist(team.compile(), "a sub-team")}
        ),
        name="sup_hier",
    )
    async with Runtime(MemoryStore(), recover=False) as rt:
        res = await rt.run(wf, {"task": "x"})
        children = await rt.store.list_runs(parent_run_id=res.run_id)
    assert res.state["outputs"] == {"t1": "team says dig"}
    assert [c.workflow for c in children] == ["sub_team"]


async def test_a_supervisor_counts_what_its_workflow_specialists_spent() -> None:
    """A workflow specialist's model calls were missing from the supervisor's model_calls and
    tokens (a Model specialist's were counted), so comparisons of hierarchies came out wrong.
    Counted now: from the child's own counters (an agent pattern), else its model_call events."""

    @tool(scope="read", idempotent=True)
    def lookup(q: str) -> str:
        """Look something up."""
        return "42"

    found = ScriptedModel(
        [
            ModelResponse(
                tool_calls=(tool_call("lookup", {"q": "x"}),),
                usage=Usage(input_tokens=30, output_tokens=5),
            ),
            ModelResponse(text="it is 42", usage=Usage(input_tokens=40, output_tokens=6)),
        ]
    )
    researcher = react_agent(ReactOptions(model=found, tools=ToolExecutor([lookup])), name="res")

    async def plain(state: Desk) -> dict[str, Any]:  # no counters: its events are summed
        answer = await found_too.chat(state["task"])
        return {"answer": answer.text}

    found_too = ScriptedModel(
        [ModelResponse(text="done", usage=Usage(input_tokens=7, output_tokens=3))]
    )
    plan = {
        "tasks": [
            {"id": "t1", "agent": "research", "task": "find x"},
            {"id": "t2", "agent": "desk", "task": "file it"},
        ]
    }
    boss = ScriptedModel(
        [
            ModelResponse(text=json.dumps(plan), usage=Usage(input_tokens=50, output_tokens=20)),
            ModelResponse(text="x is 42", usage=Usage(input_tokens=60, output_tokens=4)),
        ]
    )
    wf = supervisor_agent(
        SupervisorOptions(
            supervisor=boss,
            specialists={
                "research": Specialist(researcher, "finds things"),
                "desk": Specialist(_desk("plain_desk", plain), "files things"),
            },
        ),
        name="sup_counts",
    )
    async with Runtime(MemoryStore(), recover=False) as rt:
        res = await rt.run(wf, {"task": "what is x?"})
    assert res.status is RunStatus.COMPLETED, res.error
    assert res.state["model_calls"] == 2 + 2 + 1
    assert res.state["tokens"] == (70 + 64) + (35 + 46) + 10


class Desk(TypedDict, total=False):
    task: str
    answer: str


def _desk(name: str, node: Any) -> Any:
    g = Graph(Desk, name=name)
    g.add_node("work", node).add_edge(START, "work").add_edge("work", END)
    return g.compile()


def _asking(state: Desk) -> dict[str, Any]:
    told = interrupt({"approve": state["task"]})
    return {"answer": f"{state['task']}: {told}"}


async def test_a_workflow_specialist_that_asks_a_human_parks_the_supervisor() -> None:
    """A specialist waiting for a human (an interrupt, an approval its tool needs) failed the
    whole supervisor run: 'specialist refunds ended ESCALATED'."""
    refunds = _desk("refund_desk", _asking)
    plan = {
        "tasks": [
            {"id": "t1", "agent": "refunds", "task": "refund 1234"},
            {"id": "t2", "agent": "refunds", "task": "refund 1235"},
        ]
    }
    boss = ScriptedModel([plan, "both handled"])
    wf = supervisor_agent(
        SupervisorOptions(
            supervisor=boss, specialists={"refunds": Specialist(refunds, "refunds orders")}
        ),
        name="sup_asks",
    )
    async with Runtime(MemoryStore(), workflows=[wf, refunds], recover=False) as rt:
        res = await rt.run(wf, {"task": "refunds"})
        assert res.status is RunStatus.ESCALATED
        asks = {i["payload"]["task"]: i for i in res.interrupts}
        assert sorted(asks) == ["t1", "t2"]  # both tasks of the wave ask at once
        assert asks["t1"]["payload"]["question"] == {"approve": "refund 1234"}
        assert asks["t1"]["payload"]["specialist"] == "refunds"
        child = asks["t2"]["payload"]["run_id"]
        assert (await rt.get_run(child)).status is RunStatus.ESCALATED
        answers = {asks["t1"]["id"]: "yes", asks["t2"]["id"]: "no"}
        done = await rt.resume(res.run_id, answers=answers)
        assert done.status is RunStatus.COMPLETED, done.error
        assert done.state["outputs"] == {"t1": "refund 1234: yes", "t2": "refund 1235: no"}
        assert done.state["answer"] == "both handled"
        assert (await rt.get_run(child)).status is RunStatus.COMPLETED


async def test_a_specialist_that_escalates_escalates_the_supervisor_with_its_kind() -> None:
    def guarded(state: Desk) -> dict[str, Any]:
        raise EscalationSignal("amount over the limit", kind="guard", amount=5000)

    desk = _desk("guarded_desk", guarded)
    boss = ScriptedModel([{"tasks": [{"id": "t1", "agent": "desk", "task": "pay"}]}, "x"])
    wf = supervisor_agent(
        SupervisorOptions(supervisor=boss, specialists={"desk": Specialist(desk, "pays")}),
        name="sup_guard",
    )
    async with Runtime(MemoryStore(), workflows=[wf, desk], recover=False) as rt:
        res = await rt.run(wf, {"task": "pay"})
    assert res.status is RunStatus.ESCALATED
    assert res.escalation is not None and res.escalation["kind"] == "guard"
    assert "amount over the limit" in res.escalation["reason"]


async def test_retrying_a_supervisor_retries_the_specialist_that_failed_it(tmp_path: Path) -> None:
    """A workflow specialist failed (a backend down), failing the supervisor; resuming the
    FAILED supervisor, as a failed run is retried, found the child FAILED and failed again at
    once, forever: the child is retried now, and the failure says why it failed."""
    calls: list[str] = []

    def flaky(state: Desk) -> dict[str, Any]:
        calls.append(state["task"])
        if len(calls) == 1:
            raise RuntimeError("ledger backend down")
        return {"answer": f"booked {state['task']}"}

    desk = _desk("flaky_desk", flaky)
    boss = ScriptedModel([{"tasks": [{"id": "t1", "agent": "desk", "task": "book"}]}, "done"])
    wf = supervisor_agent(
        SupervisorOptions(supervisor=boss, specialists={"desk": Specialist(desk, "books")}),
        name="sup_retry",
    )
    async with Runtime(
        SqliteStore(tmp_path / "runs.db"), workflows=[wf, desk], recover=False
    ) as rt:
        res = await rt.run(wf, {"task": "book it"})
        assert res.status is RunStatus.FAILED and res.error is not None
        assert "specialist desk ended FAILED: ledger backend down" in res.error["message"]
        done = await rt.resume(res.run_id)
        (child,) = await rt.store.list_runs(parent_run_id=res.run_id)
    assert done.status is RunStatus.COMPLETED, done.error
    assert done.state["outputs"] == {"t1": "booked book"} and done.state["answer"] == "done"
    assert child.status is RunStatus.COMPLETED and calls == ["book", "book"]


async def test_an_assignment_to_an_unknown_specialist_is_repaired_once_then_fails() -> None:
    ghost = {"tasks": [{"id": "t1", "agent": "ghost", "task": "x"}]}
    fixed = {"tasks": [{"id": "t1", "agent": "w", "task": "x"}]}
    boss = ScriptedModel([ghost, fixed, "ok"])
    specialists = {"w": Specialist(echo("w"), "w")}
    final = await supervisor_agent(
        SupervisorOptions(supervisor=boss, specialists=specialists)
    ).ainvoke({"task": "x"})
    assert final["outputs"] == {"t1": "w did: x"}
    assert "unknown specialist(s) ['ghost']" in boss.requests[1].messages[-1].content
    stubborn = ScriptedModel([ghost], cycle=True)
    wf = supervisor_agent(SupervisorOptions(supervisor=stubborn, specialists=specialists))
    with pytest.raises(RunFailedError, match=r"unknown specialist\(s\) \['ghost'\]"):
        await wf.ainvoke({"task": "x"})
    assert stubborn.calls == 2


def test_bad_specialists_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="Specialist"):
        SupervisorOptions(supervisor=ScriptedModel([]), specialists={"w": echo("w")})  # type: ignore[dict-item]
    with pytest.raises(ConfigurationError, match="at least one"):
        SupervisorOptions(supervisor=ScriptedModel([]), specialists={})
