"""Effect keys (journal keys and the default idempotency key a tool, an MCP server or the model
journal gets) are unique per run and stable when the run replays; the journal of a run started
before keys carried the run id is still found after an upgrade.

The crash-recovery half (a real SIGKILL between a tool's effect and its journaled result) is in
tests/tools/test_executor_crash.py.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest

from tests.graph.conftest import PG_DSN, pg_schema
from tether import (
    END,
    START,
    Graph,
    RunContext,
    RunResult,
    RunStatus,
    Runtime,
    append,
    interrupt,
)
from tether.core.ids import effect_key, legacy_effect_key
from tether.graph import context as context_module
from tether.graph import runtime as runtime_module
from tether.llm import FunctionModel, ModelRequest
from tether.store.memory import MemoryStore
from tether.store.protocol import RunStore
from tether.tools import ToolExecutor, tool
from tether.tools.contract import ToolContract
from tether.tools.mcp import McpToolset

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parents[2]
MCP_SERVER = ["-m", "tether.tools.mcp", "--app", "tests.tools.mcp.app:tools"]


class S(TypedDict, total=False):
    order: str
    log: Annotated[list[Any], append]


class World:
    """The outside world: what each effect was asked, with which key."""

    def __init__(self) -> None:
        self.charges: list[str] = []
        self.emails: list[str] = []
        self.prompts: list[str] = []

    def charge_tool(self) -> ToolContract:
        @tool(scope="write", idempotent=True)
        async def charge(order_id: str, cents: int, idempotency_key: str) -> str:
            """Charge an order; the payment API dedupes on the key."""
            self.charges.append(idempotency_key)
            return f"charged:{idempotency_key}"

        return charge

    def email(self, order: str) -> str:
        self.emails.append(order)
        return f"mailed:{order}"

    def model(self) -> FunctionModel:
        def reply(request: ModelRequest) -> str:
            self.prompts.append(request.last_user_text)
            return f"thanks, {request.last_user_text}"

        return FunctionModel(reply, name="clerk")


def pay_workflow(world: World, *, mcp: bool, name: str = "pay") -> Any:
    model = world.model()

    async def pay(s: Any, ctx: RunContext) -> dict[str, Any]:
        tools: ToolExecutor = ctx.deps["tools"]
        charged = await tools.call("charge", {"order_id": s["order"], "cents": 500}, ctx=ctx)
        mailed = await ctx.effect("email", world.email, s["order"])
        answer = await model.chat(s["order"])
        out = [charged.unwrap(), mailed, answer.text]
        if mcp:  # the MCP server's echo_key answers with the key it got in the request's _meta
            out.append((await tools.call("remote.echo_key", {}, ctx=ctx)).unwrap())
        out.append(interrupt({"approve": s["order"]}))
        return {"log": out}

    g = Graph(S, name=name)
    g.add_node("pay", pay).add_edge(START, "pay").add_edge("pay", END)
    return g.compile()


async def journal(rt: Runtime, run_id: str) -> dict[str, Any]:
    """The run's journal: key -> (kind, status, result)."""
    return {e.key: (e.kind, e.status, e.result) for e in await rt.store.list_effects(run_id)}


def expected_keys(run_id: str, *, mcp: bool) -> set[str]:
    keys = {
        f"{run_id}:1:pay:0:tool:charge:0",
        f"{run_id}:1:pay:0:effect:email:0",
        f"{run_id}:1:pay:0:model:0",
    }
    if mcp:
        keys.add(f"{run_id}:1:pay:0:tool:remote.echo_key:0")
    return keys


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunStore]:
    """A fresh store: in memory, a SQLite file or a new PostgreSQL schema."""
    if request.param == "memory":
        yield MemoryStore()
        return
    if request.param == "sqlite":
        from tether.store.sqlite import SqliteStore

        yield SqliteStore(tmp_path / "runs.db")
        return
    from tether.store.postgres import PostgresStore

    with pg_schema("tether_keys") as schema:
        yield PostgresStore(PG_DSN, schema=schema)


@pytest.fixture
async def remote() -> AsyncIterator[McpToolset]:
    async with McpToolset.stdio(sys.executable, MCP_SERVER, cwd=ROOT, prefix="remote.") as ts:
        yield ts


async def test_two_runs_never_share_a_key_and_a_resume_keeps_them(
    remote: McpToolset, store: RunStore
) -> None:
    world = World()
    executor = ToolExecutor([world.charge_tool(), *remote.tools])
    wf = pay_workflow(world, mcp=True)
    async with Runtime(store, recover=False, deps={"tools": executor}) as rt:
        a = await rt.run(wf, {"order": "A1"})
        b = await rt.run(wf, {"order": "A1"})  # the same input: only the run differs
        assert a.status is b.status is RunStatus.ESCALATED
        before = {r: await journal(rt, r) for r in (a.run_id, b.run_id)}
        for r in (a.run_id, b.run_id):
            assert set(before[r]) == expected_keys(r, mcp=True)
        assert not set(before[a.run_id]) & set(before[b.run_id])
        # what the outside world was handed: the tool's idempotency key, the MCP request's _meta
        ka, kb = f"{a.run_id}:1:pay:0:tool:", f"{b.run_id}:1:pay:0:tool:"
        assert world.charges == [f"{ka}charge:0", f"{kb}charge:0"]
        assert world.emails == ["A1", "A1"] and world.prompts == ["A1", "A1"]
        for run_id, k in ((a.run_id, ka), (b.run_id, kb)):
            echoed = before[run_id][f"{k}remote.echo_key:0"]
            assert echoed == ("tool", "done", f"{k}remote.echo_key:0")

        # resumed after the interrupt: the node re-runs, makes the same keys, finds them all
        done = await rt.resume(a.run_id, "approved")
        assert isinstance(done, RunResult) and done.status is RunStatus.COMPLETED
        assert done.state["log"] == [
            f"charged:{ka}charge:0",
            "mailed:A1",
            "thanks, A1",
            f"{ka}remote.echo_key:0",
            "approved",
        ]
        assert await journal(rt, a.run_id) == before[a.run_id]
        assert len(world.charges) == len(world.emails) == len(world.prompts) == 2
        replayed = [
            e.data["key"]
            for e in await rt.store.list_events(a.run_id)
            if e.type == "effect_replayed"
        ]
        assert sorted(replayed) == sorted(expected_keys(a.run_id, mcp=True))


async def test_a_fork_re_executes_under_its_own_keys() -> None:
    """A fork is a new run: what it re-executes is a new effect with the fork's keys (a
    payment API sees a second charge, not a duplicate of the parent's to drop or to replay)."""
    world = World()
    executor = ToolExecutor([world.charge_tool()])
    wf = pay_workflow(world, mcp=False)
    async with Runtime(MemoryStore(), recover=False, deps={"tools": executor}) as rt:
        parent = await rt.run(wf, {"order": "A1"})
        fork = await rt.fork(parent.run_id, 0)
        res = await fork.wait(timeout=30)
        assert res.status is RunStatus.ESCALATED
        assert fork.run_id != parent.run_id
        assert set(await journal(rt, fork.run_id)) == expected_keys(fork.run_id, mcp=False)
        assert world.charges == [
            f"{parent.run_id}:1:pay:0:tool:charge:0",
            f"{fork.run_id}:1:pay:0:tool:charge:0",
        ]


class Parent(TypedDict, total=False):
    order: str
    log: Annotated[list[Any], append]


async def test_subgraph_child_runs_have_keys_of_their_own() -> None:
    world = World()

    async def notify(s: Any, ctx: RunContext) -> dict[str, Any]:
        return {"log": [await ctx.effect("email", world.email, s["order"])]}

    child = Graph(Parent, name="child")
    child.add_node("notify", notify).add_edge(START, "notify").add_edge("notify", END)
    parent = Graph(Parent, name="parent")
    parent.add_node("sub", child.compile()).add_edge(START, "sub").add_edge("sub", END)
    wf = parent.compile()
    async with Runtime(MemoryStore(), recover=False) as rt:
        one = await rt.run(wf, {"order": "A1"})
        two = await rt.run(wf, {"order": "A1"})
        keys = []
        for res in (one, two):
            assert res.status is RunStatus.COMPLETED
            child_id = f"{res.run_id}.1:sub:0"
            assert set(await journal(rt, child_id)) == {f"{child_id}:1:notify:0:effect:email:0"}
            keys.append(child_id)
        assert keys[0] != keys[1] and world.emails == ["A1", "A1"]


async def test_a_run_journaled_before_keys_had_the_run_id_is_replayed_after_the_upgrade(
    monkeypatch: pytest.MonkeyPatch, store: RunStore
) -> None:
    """A run interrupted under the old key format and resumed by this version: every call
    recorded before the interrupt is found under its old key and replayed, not made again."""

    def old_effect_key(run_id: str, task: str, call_index: int, kind: str) -> str:
        return f"{task}:{kind}:{call_index}"

    world = World()
    executor = ToolExecutor([world.charge_tool()])
    wf = pay_workflow(world, mcp=False)
    async with Runtime(store, recover=False, deps={"tools": executor}) as rt:
        with monkeypatch.context() as old_version:
            old_version.setattr(context_module, "effect_key", old_effect_key)
            # the old version did not mark its runs as having run-scoped keys
            old_version.setattr(runtime_module, "KEY_FORMAT_KEY", "_not_the_marker")
            res = await rt.run(wf, {"order": "A1"})
        assert res.status is RunStatus.ESCALATED
        old = await journal(rt, res.run_id)
        assert set(old) == {"1:pay:0:tool:charge:0", "1:pay:0:effect:email:0", "1:pay:0:model:0"}
        assert world.charges == ["1:pay:0:tool:charge:0"]

        done = await rt.resume(res.run_id, "approved")
        assert isinstance(done, RunResult) and done.status is RunStatus.COMPLETED
        assert done.state["log"] == [
            "charged:1:pay:0:tool:charge:0",
            "mailed:A1",
            "thanks, A1",
            "approved",
        ]
        # nothing happened twice; the results now also stand under the new keys
        assert (world.charges, world.emails, world.prompts) == (
            ["1:pay:0:tool:charge:0"],
            ["A1"],
            ["A1"],
        )
        now = await journal(rt, res.run_id)
        for key in expected_keys(res.run_id, mcp=False):
            legacy = legacy_effect_key(res.run_id, key)
            assert legacy is not None and now[key] == old[legacy]


async def test_an_old_intent_without_result_still_escalates_a_non_idempotent_effect(
    store: RunStore,
) -> None:
    """The old version recorded the intent of a non-idempotent effect and died before its
    result: recovered by this version, the run escalates (nobody knows whether it happened)
    instead of sending again, and the answer settles the call."""
    sends: list[str] = []

    def send(order: str) -> str:
        sends.append(order)
        return f"sent:{order}"

    async def mail(s: Any, ctx: RunContext) -> dict[str, Any]:
        return {"log": [await ctx.effect("email", send, s["order"])]}

    g = Graph(S, name="mail")
    g.add_node("mail", mail).add_edge(START, "mail").add_edge("mail", END)
    wf = g.compile()
    async with Runtime(store, workflows=[wf], recover=False) as rt:
        with pytest.MonkeyPatch.context() as old_version:
            old_version.setattr(runtime_module, "KEY_FORMAT_KEY", "_not_the_marker")
            run_id = (await rt.start(wf, {"order": "A1"}, execute=False)).run_id
        old_key = "1:mail:0:effect:email:0"
        await rt.store.record_intent(run_id, old_key, "effect", {"name": "email"})
        assert await rt.recover_once() == [run_id]
        res = await rt.wait(run_id, timeout=30)
        assert res.status is RunStatus.ESCALATED and sends == []
        assert res.escalation is not None
        assert res.escalation["kind"] == "unknown_effect_outcome"
        assert res.escalation["details"]["key"] == f"{run_id}:{old_key}"
        done = await rt.resume(run_id, {"result": "sent:A1 (said the operator)"})
        assert isinstance(done, RunResult) and done.status is RunStatus.COMPLETED
        assert done.state["log"] == ["sent:A1 (said the operator)"] and sends == []


async def test_a_new_run_never_looks_for_old_keys(store: RunStore) -> None:
    """Runs created by this version carry the key-format marker, so a first-time call pays no
    extra journal read for the pre-upgrade key (and a stray entry under it is never replayed)."""
    sends: list[str] = []

    async def mail(s: Any, ctx: RunContext) -> dict[str, Any]:
        return {"log": [await ctx.effect("email", lambda: sends.append(s["order"]) or "sent")]}

    g = Graph(S, name="mail-new")
    g.add_node("mail", mail).add_edge(START, "mail").add_edge("mail", END)
    wf = g.compile()
    async with Runtime(store, workflows=[wf], recover=False) as rt:
        run_id = (await rt.start(wf, {"order": "A1"}, execute=False)).run_id
        run = await rt.store.get_run(run_id)
        assert run.metadata["effect_keys"] == "tool-scoped"
        await rt.store.record_intent(run_id, "1:mail:0:effect:email:0", "effect", {})
        await rt.store.record_result(run_id, "1:mail:0:effect:email:0", result="stale")
        assert await rt.recover_once() == [run_id]
        res = await rt.wait(run_id, timeout=30)
        assert res.status is RunStatus.COMPLETED
        assert res.state["log"] == ["sent"] and sends == ["A1"]


def test_the_key_format() -> None:
    key = effect_key("0190abc", "3:pay:1", 2, "tool:charge")
    assert key == "0190abc:3:pay:1:tool:charge:2"
    assert legacy_effect_key("0190abc", key) == "3:pay:1:tool:charge:2"
    assert legacy_effect_key("0190abc", "order-42") is None
    assert legacy_effect_key("0190abc", "0190abc:") is None
    nested = effect_key("0190abc/1:sub:0", "1:notify:0", 0, "effect:email")
    assert legacy_effect_key("0190abc/1:sub:0", nested) == "1:notify:0:effect:email:0"
