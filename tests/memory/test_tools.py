"""remember / recall / forget as tools: scoped to the calling run's tenant, journaled, carrying
provenance."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypedDict

import pytest

from tether import END, START, Graph, RunContext, Runtime, interrupt
from tether.core.errors import ConfigurationError, PolicyViolationError, ToolArgumentsError
from tether.llm import HashingEmbedder
from tether.memory import InProcessEpisodic, InProcessKnowledgeGraph, MemoryScope
from tether.memory.plane import MemoryPlane
from tether.store.sqlite import SqliteStore
from tether.tools import ToolExecutor


class S(TypedDict, total=False):
    calls: list[Any]
    results: list[Any]


def plane() -> MemoryPlane:
    return MemoryPlane(InProcessEpisodic(embedder=HashingEmbedder()), InProcessKnowledgeGraph())


async def act(state: S, ctx: RunContext) -> dict[str, Any]:
    """Make the listed tool calls through the runtime's executor."""
    tools: ToolExecutor = ctx.deps["tools"]
    out = []
    for name, args in state["calls"]:
        r = await tools.call(name, args, ctx=ctx)
        out.append(r.value if r.ok else {"error": type(r.error).__name__, "msg": str(r.error)})
    return {"results": out}


def workflow() -> Any:
    g = Graph(S, name="memory_tools")
    g.add_node("act", act).add_edge(START, "act").add_edge("act", END)
    return g.compile()


async def test_tools_act_for_the_runs_tenant_and_carry_provenance(
    tmp_path: Path, memory_factory: Any
) -> None:
    """On every memory backend: in-process, SQLite, PostgreSQL + pgvector."""
    backend = await memory_factory()
    mem = MemoryPlane(backend, backend.kg)
    store = SqliteStore(tmp_path / "runs.db")
    wf = workflow()
    deps = {"tools": ToolExecutor(mem.tools(runs=store))}
    async with Runtime(store, workflows=[wf], recover=False, deps=deps) as rt:
        secret = [("remember", {"text": "The vault code is 4471.", "importance": 0.9})]
        a = await rt.run(wf, {"calls": secret}, tenant="acme")
        assert a.completed and "id" in a.state["results"][0]
        look = [("recall", {"query": "vault code", "k": 5})]
        mine = await rt.run(wf, {"calls": look}, tenant="acme")
        theirs = await rt.run(wf, {"calls": look}, tenant="globex")
        nobody = await rt.run(wf, {"calls": look})
    [hits] = mine.state["results"]
    assert [h["text"] for h in hits] == ["The vault code is 4471."]
    prov = hits[0]["provenance"]
    assert prov["source"] == "model" and prov["run_id"] == a.run_id and prov["tool"] == "remember"
    assert hits[0]["trusted"] is False
    assert theirs.state["results"] == [[]] and nobody.state["results"] == [[]]
    stored = await mem.episodic.list(MemoryScope("acme"))
    assert [m.scope.run_id for m in stored[0]] == [a.run_id]


async def test_forget_cannot_reach_another_tenant(tmp_path: Path) -> None:
    mem = plane()
    theirs = await mem.remember("globex secret", scope=MemoryScope("globex"))
    wf, store = workflow(), SqliteStore(tmp_path / "r.db")
    deps = {"tools": ToolExecutor(mem.tools(runs=store))}
    async with Runtime(store, workflows=[wf], recover=False, deps=deps) as rt:
        r = await rt.run(wf, {"calls": [("forget", {"ids": [theirs.id]})]}, tenant="acme")
    assert r.state["results"] == [{"forgotten": 0}]
    assert await mem.episodic.get(theirs.id, scope=MemoryScope("globex")) is not None


async def test_recall_in_a_run_is_journaled_and_replayed(tmp_path: Path) -> None:
    mem = plane()
    await mem.remember("The user prefers aisle seats.", scope=MemoryScope("acme"))
    searched: list[str] = []
    real = mem.recall

    async def counting(query: str, **kw: Any) -> Any:
        searched.append(query)
        return await real(query, **kw)

    mem.recall = counting  # type: ignore[method-assign]

    async def ask(state: S, ctx: RunContext) -> dict[str, Any]:
        r = await ctx.deps["tools"].call("recall", {"query": "seat preference"}, ctx=ctx)
        return {"results": [r.value, interrupt("ok?")]}

    g = Graph(S, name="recall_then_ask")
    g.add_node("ask", ask).add_edge(START, "ask").add_edge("ask", END)
    wf = g.compile()
    store = SqliteStore(tmp_path / "r.db")
    deps = {"tools": ToolExecutor(mem.tools(runs=store))}
    async with Runtime(store, workflows=[wf], recover=False, deps=deps) as rt:
        parked = await rt.run(wf, {}, tenant="acme")
        await mem.forget(
            [h.memory.id for h in await real("seat", scope=MemoryScope("acme"))],
            scope=MemoryScope("acme"),
        )
        done = await rt.resume(parked.run_id, "yes")
    assert searched == ["seat preference"]  # the resume replayed the journaled recall
    assert done.state["results"][0][0]["text"] == "The user prefers aisle seats."


async def test_tenant_must_be_knowable_inside_a_run(tmp_path: Path) -> None:
    mem = plane()
    wf = workflow()
    store = SqliteStore(tmp_path / "r.db")
    blind = {"tools": ToolExecutor(mem.tools())}
    async with Runtime(store, workflows=[wf], recover=False, deps=blind) as rt:
        # a run with a tenant carries it to the tools (RunContext.tenant)
        r = await rt.run(wf, {"calls": [("recall", {"query": "x"})]}, tenant="acme")
        assert r.state["results"][0] == []
        # a run without one may be the child of a tenanted run started before children took
        # their parent's tenant: only the run store can tell
        r = await rt.run(wf, {"calls": [("recall", {"query": "x"})]})
        assert "runs=" in r.state["results"][0]["msg"]
    store = SqliteStore(tmp_path / "r.db")  # the first runtime closed its store
    bound = {"tools": ToolExecutor(mem.tools(runs=store), tenant="globex")}
    async with Runtime(store, workflows=[wf], recover=False, deps=bound) as rt:
        r = await rt.run(wf, {"calls": [("recall", {"query": "x"})]}, tenant="acme")
        assert r.state["results"][0]["error"] == PolicyViolationError.__name__


async def test_outside_a_run_the_executor_tenant_scopes_calls() -> None:
    mem = plane()
    acme, other = ToolExecutor(mem.tools(), tenant="acme"), ToolExecutor(mem.tools())
    (await acme.call("remember", {"text": "acme likes tea"})).unwrap()
    hits = (await acme.call("recall", {"query": "tea"})).unwrap()
    assert [h["text"] for h in hits] == ["acme likes tea"]
    assert (await other.call("recall", {"query": "tea"})).unwrap() == []


async def test_bad_arguments_are_tool_argument_errors() -> None:
    tools = ToolExecutor(plane().tools(), tenant="acme")
    for name, args in [
        ("remember", {"text": ""}),
        ("remember", {"text": "x", "importance": 3}),
        ("recall", {"query": "x", "k": 0}),
        ("recall", {"query": "x", "within": "everyone"}),
        ("forget", {"ids": []}),
    ]:
        r = await tools.call(name, args)
        assert isinstance(r.error, ToolArgumentsError), (name, args)


def test_plane_checks_its_parts() -> None:
    with pytest.raises(ConfigurationError):
        MemoryPlane(object())  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        MemoryPlane(InProcessEpisodic(embedder=HashingEmbedder()), graph=object())  # type: ignore[arg-type]


async def test_a_child_run_without_a_tenant_acts_for_its_roots() -> None:
    from tether.core.lifecycle import RunStatus
    from tether.memory.tenancy import RunTenants
    from tether.store.types import RunRecord

    records = {
        "root": RunRecord("root", "wf", RunStatus.EXECUTING, tenant="acme", thread_id="t1"),
        "root/child": RunRecord("root/child", "wf", RunStatus.EXECUTING, parent_run_id="root"),
        "orphan": RunRecord("orphan", "wf", RunStatus.EXECUTING, parent_run_id="gone"),
    }

    class Runs:
        looked: list[str] = []

        async def get_run(self, run_id: str) -> RunRecord:
            from tether.core.errors import RunNotFoundError

            self.looked.append(run_id)
            if run_id not in records:
                raise RunNotFoundError(run_id)
            return records[run_id]

    runs = Runs()
    tenants = RunTenants(runs)  # type: ignore[arg-type]
    assert await tenants.of("root/child") == ("acme", None)
    assert await tenants.of("root") == ("acme", "t1")
    assert await tenants.of("orphan") == (None, None)
    before = len(runs.looked)
    assert await tenants.of("root/child") == ("acme", None)  # cached
    assert len(runs.looked) == before
