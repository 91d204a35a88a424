"""A parallel step's task events are committed exactly once: journaled with each finished
task's node write, committed by whichever runtime finishes the step, never again on resume."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from typing import Annotated, Any, TypedDict

from tether import END, START, Graph, RunContext, RunStatus, Runtime, Workflow, append, interrupt
from tether.store.protocol import RunStore


class S(TypedDict):
    log: Annotated[list[str], append]


async def notes(rt: Runtime, run_id: str) -> Counter[str]:
    return Counter(
        [str(e.data["who"]) async for e in rt.events(run_id, follow=False) if e.type == "note"]
    )


def pair(slow: Any, name: str) -> Workflow:
    """``fast`` emits a note and finishes; ``slow`` runs beside it in the same step."""

    async def fast(state: S, ctx: RunContext) -> dict[str, Any]:
        ctx.emit("note", {"who": "fast"})
        return {"log": ["fast"]}

    g = Graph(S, name=name)
    g.add_node("fast", fast)
    g.add_node("slow", slow)
    g.add_edge(START, "fast")
    g.add_edge(START, "slow")
    g.add_edge("fast", END)
    g.add_edge("slow", END)
    return g.compile()


async def test_a_step_finished_by_another_runtime_commits_the_finished_tasks_events(
    shared_store: Callable[[], RunStore],
) -> None:
    """The first runtime stops mid-step (its memory is gone, as in a crash) after ``fast``
    finished and was journaled: the runtime that finishes the step commits ``fast``'s event
    although it does not run ``fast`` again."""
    gate = asyncio.Event()

    async def slow(state: S, ctx: RunContext) -> dict[str, Any]:
        ctx.emit("note", {"who": "slow"})
        await gate.wait()
        return {"log": ["slow"]}

    wf = pair(slow, "crash_pair")
    async with Runtime(shared_store(), workflows=[wf]) as first:
        handle = await first.start(wf, {"log": []})
        while not await first.store.get_node_writes(handle.run_id, 1):
            await asyncio.sleep(0.01)  # until fast's write is journaled
    gate.set()
    async with Runtime(shared_store(), workflows=[wf], recover=True, poll_interval=0.05) as second:
        res = await second.wait(handle.run_id)
        assert res.status is RunStatus.COMPLETED and sorted(res.state["log"]) == ["fast", "slow"]
        assert await notes(second, handle.run_id) == {"fast": 1, "slow": 1}


async def test_a_step_resumed_after_an_interrupt_does_not_commit_its_events_again(
    any_rt: Runtime,
) -> None:
    async def slow(state: S, ctx: RunContext) -> dict[str, Any]:
        ctx.emit("note", {"who": "asker"})
        return {"log": [str(interrupt("ok?"))]}

    wf = pair(slow, "ask_pair")
    rt = any_rt
    rt.register(wf)
    res = await rt.run(wf, {"log": []})
    assert res.status is RunStatus.ESCALATED
    assert await notes(rt, res.run_id) == {"fast": 1, "asker": 1}
    res = await rt.resume(res.run_id, "yes")
    assert res.status is RunStatus.COMPLETED and sorted(res.state["log"]) == ["fast", "yes"]
    assert await notes(rt, res.run_id) == {"fast": 1, "asker": 2}  # asked, then answered


async def test_a_failed_step_retried_does_not_commit_its_events_again(any_rt: Runtime) -> None:
    tries = Counter[str]()

    async def slow(state: S, ctx: RunContext) -> dict[str, Any]:
        tries["slow"] += 1
        if tries["slow"] == 1:
            raise RuntimeError("first try fails")
        return {"log": ["slow"]}

    wf = pair(slow, "fail_pair")
    rt = any_rt
    rt.register(wf)
    res = await rt.run(wf, {"log": []})
    assert res.status is RunStatus.FAILED
    res = await rt.resume(res.run_id)
    assert res.status is RunStatus.COMPLETED and sorted(res.state["log"]) == ["fast", "slow"]
    assert await notes(rt, res.run_id) == {"fast": 1}
