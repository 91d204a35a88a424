"""Workflow.invoke / ainvoke, the LangGraph aliases, and a LangGraph supervisor/researcher graph
ported as docs/from-langgraph.md shows."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest

from tether import END, START, Command, Graph, Runtime, append, interrupt
from tether.core.errors import (
    ConfigurationError,
    InvalidInputError,
    RunFailedError,
    RunStateError,
)
from tether.core.lifecycle import RunStatus
from tether.graph import RunParkedError
from tether.store.memory import MemoryStore
from tether.store.sqlite import SqliteStore


class S(TypedDict, total=False):
    n: int
    boom: bool
    ask: bool
    answer: str


def step(s: S) -> dict[str, Any]:
    if s.get("boom"):
        raise ZeroDivisionError("n is zero")
    if s.get("ask"):
        return {"answer": interrupt("sure?")}
    return {"n": s.get("n", 0) + 1}


g = Graph(S, name="invoke_demo")
g.add_node("step", step).set_entry_point("step").set_finish_point("step")
wf = g.compile()


def test_invoke_returns_the_final_state() -> None:
    assert wf.invoke({"n": 1}) == {"n": 2}
    assert wf.invoke() == {"n": 1}


def test_a_failure_raises_with_the_run_id_and_the_cause(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    with pytest.raises(RunFailedError) as info:
        wf.invoke({"boom": True}, store=url)
    err = info.value
    assert "ZeroDivisionError in node 'step': n is zero" in str(err)
    assert err.error["type"] == "ZeroDivisionError" and err.error["node"] == "step"
    assert err.run_id in str(err)
    assert isinstance(err.__cause__, ZeroDivisionError)  # what the node raised, as LangGraph would

    async def recorded() -> RunStatus:
        async with Runtime(url, recover=False) as rt:
            return (await rt.get_run(err.run_id)).status

    import asyncio

    assert asyncio.run(recorded()) is RunStatus.FAILED


async def test_a_parked_run_raises_and_waits_in_the_store() -> None:
    store = MemoryStore()
    with pytest.raises(RunParkedError) as info:
        await wf.ainvoke({"ask": True}, store=store)
    parked = info.value
    assert isinstance(parked, RunStateError)
    assert parked.escalation["kind"] == "interrupt"
    assert [i["payload"] for i in parked.interrupts] == ["sure?"]
    assert f"resume({parked.run_id!r}, value)" in str(parked)
    async with Runtime(store, workflows=[wf], recover=False) as rt:
        done = await rt.resume(parked.run_id, "yes")
    assert done.state["answer"] == "yes"


async def test_invoke_inside_an_event_loop_points_to_ainvoke() -> None:
    with pytest.raises(ConfigurationError, match=r"await workflow\.ainvoke"):
        wf.invoke({"n": 1})
    assert await wf.ainvoke({"n": 5}) == {"n": 6}


async def test_threads_through_invoke_need_a_kept_store() -> None:
    with pytest.raises(InvalidInputError, match="thread_id needs a store"):
        await wf.ainvoke({"n": 1}, thread_id="t")
    # a memory:// URL is a store opened for the call alone: its thread was forgotten at once
    for url in ("memory://", " MEMORY:// "):
        with pytest.raises(InvalidInputError, match="thread_id needs a store"):
            await wf.ainvoke({"n": 1}, store=url, thread_id="t")
    store = MemoryStore()
    assert await wf.ainvoke({"n": 1}, store=store, thread_id="t") == {"n": 2}
    assert await wf.ainvoke({}, store=store, thread_id="t") == {"n": 3}


def test_a_store_object_serves_many_calls_and_stays_open(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "kept.db")
    try:
        assert wf.invoke({"n": 1}, store=store, thread_id="k") == {"n": 2}
        assert wf.invoke({}, store=store, thread_id="k") == {"n": 3}
    finally:
        import asyncio

        asyncio.run(store.close())


async def test_unwrap_chains_the_node_exception_only_when_at_hand(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    async with Runtime(url, recover=False) as rt:
        failed = await rt.run(wf, {"boom": True})
        with pytest.raises(RunFailedError) as info:
            failed.unwrap()
        assert isinstance(info.value.__cause__, ZeroDivisionError)
    async with Runtime(url, recover=False) as other:  # read back from the store: no exception
        again = await other.wait(failed.run_id)
        assert again.cause is None and again.error is not None
        with pytest.raises(RunFailedError, match="n is zero") as info:
            again.unwrap()
        assert info.value.__cause__ is None


async def test_cancelled_run_is_not_returned_as_a_state() -> None:
    store = MemoryStore()
    async with Runtime(store, recover=False) as rt:
        h = await rt.submit(wf, {"n": 1})
        await rt.cancel(h.run_id)
        from tether.graph.invoke import outcome

        with pytest.raises(RunStateError, match="CANCELLED"):
            outcome(await rt.wait(h.run_id))


# -- a LangGraph supervisor/researcher graph, ported (the code of docs/from-langgraph.md) ------
class Team(TypedDict, total=False):
    messages: Annotated[list[str], append]  # LangGraph: Annotated[list, add_messages]
    findings: Annotated[list[str], append]


NOTES = {
    "durable": "checkpoints let a crashed run resume",
    "agents": "a supervisor routes work between agents",
    "human": "interrupts park a run until a person answers",
}


def supervisor(state: Team) -> Command:
    question = state["messages"][-1]
    mine = [f for f in state.get("findings", []) if f.startswith(question)]
    return Command(goto="researcher" if len(mine) < 2 else "writer")


def researcher(state: Team) -> dict[str, Any]:
    question = state["messages"][-1]
    mine = [f for f in state.get("findings", []) if f.startswith(question)]
    ranked = sorted(NOTES, key=lambda k: (k not in question.lower(), k))
    return {"findings": [f"{question}: {NOTES[ranked[len(mine)]]}"]}


def writer(state: Team) -> dict[str, Any]:
    question = state["messages"][-1]
    notes = [f.split(": ", 1)[1] for f in state["findings"] if f.startswith(question)]
    return {"messages": ["; ".join(notes)]}


builder = Graph(Team, name="research_team")
builder.add_node("supervisor", supervisor, destinations=["researcher", "writer"])
builder.add_node("researcher", researcher)
builder.add_node("writer", writer)
builder.set_entry_point("supervisor")
builder.add_edge("researcher", "supervisor")
builder.set_finish_point("writer")
team = builder.compile()
reviewed = builder.compile(interrupt_before=["writer"])


def test_ported_langgraph_team_runs_a_conversation(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'team.db'}"  # LangGraph: SqliteSaver
    first = team.invoke(
        {"messages": ["Why are durable agents useful?"]}, store=store, thread_id="1"
    )
    assert first["messages"] == [
        "Why are durable agents useful?",
        "a supervisor routes work between agents; checkpoints let a crashed run resume",
    ]
    second = team.invoke({"messages": ["What about human review?"]}, store=store, thread_id="1")
    assert len(second["messages"]) == 4  # the thread remembers the first exchange
    assert second["messages"][-1].startswith("interrupts park a run")
    assert len(second["findings"]) == 4


async def test_ported_langgraph_team_with_a_breakpoint_before_the_writer(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'team.db'}"
    with pytest.raises(RunParkedError) as info:
        await reviewed.ainvoke({"messages": ["Tell me about agents"]}, store=store, thread_id="r")
    parked = info.value
    assert parked.interrupts[0]["payload"]["node"] == "writer"
    assert len(parked.state["findings"]) == 2 and len(parked.state["messages"]) == 1
    # another process picks the run up where it waits (LangGraph: graph.invoke(None, config))
    async with Runtime(store, workflows=[reviewed], recover=False) as rt:
        result = await rt.resume(parked.run_id)
        assert result.status is RunStatus.COMPLETED
        assert [r.run_id for r in await rt.list_runs(thread_id="r")] == [parked.run_id]
    assert result.state["messages"][-1].startswith("a supervisor routes work")


def test_langgraph_aliases_build_the_same_workflow() -> None:
    a = Graph(S, name="alias")
    a.add_node("step", step).set_entry_point("step").set_finish_point("step")
    b = Graph(S, name="alias")
    b.add_node("step", step).add_edge(START, "step").add_edge("step", END)
    assert a.compile().version == b.compile().version
