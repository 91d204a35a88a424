"""The mind log of a scripted agent: every tool call beside its rationale (the node's
``explain`` or the model's text), its inputs, its raw output and what the agent said next."""

from __future__ import annotations

from pathlib import Path

import pytest

from tether import RunContext, Runtime
from tether.core.errors import InvalidInputError, RunNotFoundError
from tether.evaluation import explain, mind_log, record_plan
from tether.llm.fakes import tool_call
from tether.store.memory import MemoryStore
from tether.store.sqlite import SqliteStore
from tether.testing import FakeClock

from .agents import build, thorough_model

QUESTION = {"question": "How much did Tether raise?"}


async def test_each_action_with_its_rationale_inputs_output_and_conclusion(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    store = SqliteStore(tmp_path / "runs.db", clock=clock)
    async with Runtime(store, clock=clock) as rt:
        res = await rt.run(build(thorough_model(), clock), QUESTION)
        assert res.completed
    reopened = SqliteStore(tmp_path / "runs.db")  # stored with the run: read by another store
    await reopened.setup()
    try:
        log = await mind_log(reopened, res.run_id)
    finally:
        await reopened.close()

    assert log.workflow == "research"
    assert [(e.kind, e.name, e.node, e.step) for e in log.entries] == [
        ("thought", "scripted:scripted", "plan", 1),
        ("thought", "scripted:scripted", "agent", 2),
        ("action", "search", "agent", 2),
        ("thought", "scripted:scripted", "agent", 2),
        ("action", "fetch", "agent", 2),
        ("thought", "scripted:scripted", "agent", 2),
    ]
    search, fetch = log.actions
    # the model said why it searched, with the tool call
    assert (search.rationale, search.rationale_source) == ("I need the funding news.", "model")
    assert search.decided_by == log.entries[1].key
    assert search.input == {"q": "tether funding"}
    assert search.output == {"hits": [{"title": "Tether raises Series A", "amount_musd": 42}]}
    # the hallucination trace: what the tool returned beside what the agent concluded
    assert search.conclusion == "Tether raised 42 million dollars in its Series A."
    assert search.used_later is True  # 42 and "series" came from the search only
    assert search.unsupported == []  # every number it states (42) a tool returned
    # the node explained the fetch itself; the model gave no text with that call
    assert fetch.rationale == "the search hit needs its source page checked"
    assert fetch.rationale_source == "explain"
    assert fetch.decided_by == log.entries[3].key
    assert fetch.output == "The page says nothing new about zeppelins."
    assert fetch.used_later is False  # nothing it brought in (zeppelins...) was said later
    assert fetch.status == "done" and fetch.error is None
    assert log.entries[1].output == {
        "text": "I need the funding news.",
        "tool_calls": [{"name": "search", "arguments": {"q": "tether funding"}}],
    }
    assert [p["steps"] for p in log.plans] == [["search", "fetch", "summarize"]]
    as_dict = log.as_dict()
    assert as_dict["entries"][2]["rationale"] == "I need the funding news."


async def test_a_rationale_covers_the_calls_after_it_until_the_next(tmp_path: Path) -> None:
    from typing import Any, TypedDict

    from tether import END, START, Graph

    class S(TypedDict, total=False):
        done: bool

    async def node(state: S, ctx: RunContext) -> dict[str, Any]:
        await ctx.effect("before", lambda: 0)  # before any rationale: none
        ctx.explain("tidy up the cache", ticket=7)
        await ctx.effect("purge", lambda: 1)
        await ctx.effect("purge", lambda: 2)
        explain("then tell the owner")
        await ctx.effect("notify", lambda: "sent")
        return {"done": True}

    g = Graph(S, name="chores")
    g.add_node("work", node)
    g.add_edge(START, "work")
    g.add_edge("work", END)
    store = MemoryStore()
    async with Runtime(store) as rt:
        res = await rt.run(g.compile(), {})
    log = await mind_log(store, res.run_id)
    assert [(e.kind, e.name, e.output, e.rationale) for e in log.entries] == [
        ("effect", "before", 0, None),
        ("effect", "purge", 1, "tidy up the cache"),
        ("effect", "purge", 2, "tidy up the cache"),
        ("effect", "notify", "sent", "then tell the owner"),
    ]
    events = [e for e in await store.list_events(res.run_id) if e.type == "rationale"]
    assert events[0].data["ticket"] == 7


async def test_bad_input_is_refused_with_a_reason() -> None:
    from typing import Any, TypedDict

    from tether import END, START, Graph

    class S(TypedDict, total=False):
        x: int

    seen: list[str] = []

    async def node(state: S, ctx: RunContext) -> dict[str, Any]:
        for bad in (lambda: explain("  "), lambda: record_plan("search"),
                    lambda: record_plan([{"what": 1}])):  # fmt: skip
            with pytest.raises(InvalidInputError) as err:
                bad()
            seen.append(str(err.value))
        return {"x": 1}

    g = Graph(S, name="bad")
    g.add_node("n", node)
    g.add_edge(START, "n")
    g.add_edge("n", END)
    store = MemoryStore()
    async with Runtime(store) as rt:
        assert (await rt.run(g.compile(), {})).completed
    assert "non-empty" in seen[0] and "list" in seen[1] and "'tool'" in seen[2]
    with pytest.raises(RunNotFoundError):
        await mind_log(store, "no-such-run")
    with pytest.raises(RuntimeError):
        explain("outside a run")


async def test_numbers_no_tool_returned_are_marked() -> None:
    """The hallucination trace: the agent says 45 million where the search said 42."""
    from tether.llm.fakes import ScriptedModel

    from .agents import said

    model = ScriptedModel(
        [
            said("Plan: search, then summarize.", tokens=(1, 1)),
            said(call=tool_call("search", {"q": "tether 2026"}), tokens=(1, 1)),
            said("In 2026 Tether raised 45 million in its Series A.", tokens=(1, 1)),
        ]
    )
    clock = FakeClock()
    store = MemoryStore(clock)
    async with Runtime(store, clock=clock) as rt:
        res = await rt.run(build(model, clock), QUESTION)
    log = await mind_log(store, res.run_id)
    (action,) = log.actions
    assert action.output == {"hits": [{"title": "Tether raises Series A", "amount_musd": 42}]}
    # 2026 was in the agent's own tool call; 45 appears nowhere before the answer
    assert action.unsupported == ["45"]
    assert log.entries[-1].unsupported == ["45"]
