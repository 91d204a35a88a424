"""Runtime API details: resume without executing, fork events, error bookkeeping, cancel
cascades to subgraph children, live events only after their commit."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, TypedDict

import pytest

from tether import (
    END,
    START,
    Graph,
    RunContext,
    RunHandle,
    RunStatus,
    Runtime,
    append,
    interrupt,
)
from tether.core.reducers import add
from tether.store.memory import MemoryStore


class S(TypedDict, total=False):
    n: int
    total: Annotated[int, add]
    log: Annotated[list[str], append]


def _asker() -> Any:
    def ask(state: S) -> dict[str, Any]:
        return {"log": [f"answer={interrupt('?')}"]}

    g = Graph(S, name="asker")
    g.add_node("ask", ask).add_edge(START, "ask").add_edge("ask", END)
    return g.compile()


async def test_resume_without_executing_leaves_the_run_for_any_worker() -> None:
    store = MemoryStore()
    wf = _asker()
    async with Runtime(store, recover=False) as op:
        parked = await op.run(wf, {})
        handle = await op.resume(parked.run_id, "yes", execute=False)
        assert isinstance(handle, RunHandle)
        run = await op.get_run(parked.run_id)
        assert run.status is RunStatus.EXECUTING and run.owner is None
    async with Runtime(store, workflows=[wf], poll_interval=0.02) as worker:
        res = await worker.wait(parked.run_id, timeout=5)
        assert res.status is RunStatus.COMPLETED and res.state["log"] == ["answer=yes"]


async def test_fork_records_its_lifecycle_as_events() -> None:
    async with Runtime(MemoryStore(), recover=False) as rt:
        g = Graph(S, name="forkev")
        g.add_node("a", lambda s: {"n": 1}).add_edge(START, "a").add_edge("a", END)
        wf = g.compile()
        res = await rt.run(wf, {"n": 0})
        fork = await rt.fork(res.run_id, 0, {"n": 5})
        await fork.wait()
        evs = [e async for e in rt.events(fork.run_id, follow=False)]
        moves = [(e.data["from"], e.data["to"]) for e in evs if e.type == "lifecycle"]
        assert moves[:3] == [(None, "RECEIVED"), ("RECEIVED", "PLANNED"), ("PLANNED", "EXECUTING")]
        assert moves[-1] == ("VALIDATING", "COMPLETED")


async def test_a_run_that_recovers_by_replanning_completes_without_a_stale_error() -> None:
    calls = {"n": 0}

    def flaky(state: S) -> dict[str, Any]:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("first try fails")
        return {"log": ["ok"]}

    g = Graph(S, name="replan_clear")
    g.add_node("work", flaky).add_node("plan", lambda s: {"log": ["replanned"]})
    g.add_edge(START, "work").add_edge("plan", "work").add_edge("work", END)
    wf = g.compile(replan_node="plan", max_replans=1)
    async with Runtime(MemoryStore(), recover=False) as rt:
        res = await rt.run(wf, {})
        assert res.status is RunStatus.COMPLETED
        assert res.state["log"] == ["replanned", "ok"]
        assert (await rt.get_run(res.run_id)).error is None


async def test_an_operator_retry_gets_a_fresh_replan_budget() -> None:
    calls = {"n": 0}

    def work(state: S) -> dict[str, Any]:
        calls["n"] += 1
        if calls["n"] in (1, 2):  # the first attempt and the one re-plan both fail
            raise RuntimeError(f"fail {calls['n']}")
        if calls["n"] == 3:  # after the operator's retry: fails once more, re-plans again
            raise RuntimeError("fail 3")
        return {"log": ["done"]}

    g = Graph(S, name="replan_budget")
    g.add_node("work", work).add_node("plan", lambda s: {"log": ["plan"]})
    g.add_edge(START, "work").add_edge("plan", "work").add_edge("work", END)
    wf = g.compile(replan_node="plan", max_replans=1)
    async with Runtime(MemoryStore(), recover=False) as rt:
        res = await rt.run(wf, {})
        assert res.status is RunStatus.FAILED
        res2 = await rt.resume(res.run_id)
        assert res2.status is RunStatus.COMPLETED  # type: ignore[union-attr]
        assert res2.state["log"] == ["plan", "plan", "done"]  # type: ignore[union-attr]


async def test_numeric_add_fields_start_at_zero() -> None:
    g = Graph(S, name="adder")
    g.add_node("a", lambda s: {"total": s["total"] + 0 or 2})
    g.add_edge(START, "a").add_edge("a", END)
    async with Runtime(MemoryStore(), recover=False) as rt:
        res = await rt.run(g.compile(), {})
        assert res.state["total"] == 2


async def test_cancelling_a_parent_cancels_its_subgraph_child() -> None:
    started = asyncio.Event()

    async def slow(state: S) -> dict[str, Any]:
        started.set()
        await asyncio.sleep(30)
        return {"n": 1}

    child = Graph(S, name="slow_child")
    child.add_node("slow", slow).add_edge(START, "slow")
    parent = Graph(S, name="slow_parent")
    parent.add_node("sub", child.compile()).add_edge(START, "sub")
    async with Runtime(MemoryStore(), recover=False) as rt:
        h = await rt.start(parent.compile(), {})
        await asyncio.wait_for(started.wait(), 5)
        await rt.cancel(h.run_id, reason="stop")
        (kid,) = await rt.list_runs(parent_run_id=h.run_id)
        assert kid.metadata["subgraph_of"] == h.run_id
        assert kid.parent_step == 1
        for _ in range(100):
            if (await rt.get_run(kid.run_id)).status is RunStatus.CANCELLED:
                break
            await asyncio.sleep(0.01)
        assert (await rt.get_run(kid.run_id)).status is RunStatus.CANCELLED


async def test_a_live_escalation_event_means_the_run_can_be_resumed_at_once() -> None:
    wf = _asker()
    async with Runtime(MemoryStore(), recover=False) as rt:
        h = await rt.start(wf, {})
        async for ev in rt.events(h.run_id):
            if ev.type == "lifecycle" and ev.data["to"] == "ESCALATED":
                res = await rt.resume(h.run_id, "now")  # no RunStateError: it is committed
                assert res.status is RunStatus.COMPLETED  # type: ignore[union-attr]
                break
        else:
            pytest.fail("the stream ended without the escalation")


async def test_event_stream_has_no_gaps_across_a_resume() -> None:
    wf = _asker()
    async with Runtime(MemoryStore(), recover=False) as rt:
        parked = await rt.run(wf, {})
        seen: list[int] = []

        async def follow() -> None:
            async for ev in rt.events(parked.run_id):
                if ev.seq:
                    seen.append(ev.seq)

        task = asyncio.create_task(follow())
        await asyncio.sleep(0.05)
        await rt.resume(parked.run_id, "x")
        await asyncio.wait_for(task, 5)
        run = await rt.get_run(parked.run_id)
        assert seen == list(range(1, run.event_seq + 1))


async def test_custom_events_stream_while_the_node_runs() -> None:
    gate = asyncio.Event()

    async def chatty(state: S, ctx: RunContext) -> dict[str, Any]:
        ctx.emit("progress", {"pct": 50})
        await gate.wait()
        return {"n": 1}

    g = Graph(S, name="chatty")
    g.add_node("c", chatty).add_edge(START, "c")
    async with Runtime(MemoryStore(), recover=False) as rt:
        h = await rt.start(g.compile(), {})
        async for ev in rt.events(h.run_id):
            if ev.type == "progress":
                assert ev.data == {"pct": 50}
                assert (await rt.get_run(h.run_id)).status is RunStatus.EXECUTING
                gate.set()
                break
        assert (await h.wait()).status is RunStatus.COMPLETED
