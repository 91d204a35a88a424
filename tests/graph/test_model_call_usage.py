"""Every model call a run really made is counted once in its usage, its ``model_call`` events
and its KPIs, whatever re-runs its node: a resume after an interrupt, a durable sleep, a node
retry, a failed run retried, a fork, or another runtime continuing the run after the first
lost its memory mid-step (the node replays the call from the journal; its event, held in
memory until the step's commit, was lost: the replay puts it, once)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest

from tether import (
    END,
    START,
    Graph,
    RetryPolicy,
    RunContext,
    RunStatus,
    Runtime,
    Workflow,
    append,
    interrupt,
)
from tether.core import serde
from tether.evaluation.run_kpis import run_kpis
from tether.llm import ModelResponse, ScriptedModel, Usage
from tether.store.memory import MemoryStore
from tether.store.protocol import RunStore
from tether.store.run_usage import RunUsageTotals
from tether.store.sqlite import SqliteStore
from tether.testing.clock import FakeClock

T0 = 1_700_000_000.0
ANSWER = ModelResponse(text="ok", usage=Usage(input_tokens=10, output_tokens=4), cost=0.5)


class S(TypedDict, total=False):
    log: Annotated[list[str], append]


def paid(replies: int = 1) -> ScriptedModel:
    return ScriptedModel([ANSWER] * replies, name="paid")


def one_node(fn: Any, name: str, **node: Any) -> Workflow:
    g = Graph(S, name=name)
    g.add_node("n", fn, **node)
    g.add_edge(START, "n").add_edge("n", END)
    return g.compile()


async def counted(store: RunStore, run_id: str) -> int:
    """The run's model calls, checked to agree across its usage, its ``model_call`` events,
    its KPIs and the runs page's usage (each answer: 10 + 4 tokens, $0.50)."""
    events = [e for e in await store.list_events(run_id) if e.type == "model_call"]
    n = len(events)
    keys = [e.data["key"] for e in events]
    assert len(set(keys)) == n, keys  # one event per journaled call
    rows = await store.model_usage(run_id)
    got = [(r.calls, r.input_tokens, r.output_tokens, r.cost) for r in rows]
    assert got == ([(n, 10 * n, 4 * n, 0.5 * n)] if n else [])
    kpis = await run_kpis(store, run_id)
    assert (kpis.model_calls, kpis.input_tokens, kpis.output_tokens) == (n, 10 * n, 4 * n)
    assert kpis.cost == 0.5 * n
    assert isinstance(store, RunUsageTotals)
    page = (await store.runs_usage([run_id])).get(run_id)
    got_page = (page.model_calls, page.input_tokens, page.output_tokens) if page else (0, 0, 0)
    assert got_page == (n, 10 * n, 4 * n)
    return n


async def test_a_call_before_an_interrupt_is_counted_once_through_resumes(
    any_rt: Runtime,
) -> None:
    model = paid(2)

    async def ask(state: S) -> dict[str, Any]:
        first = await model.chat("first?")
        yes = interrupt("go on?")
        second = await model.chat(f"second, {yes}?")
        again = interrupt("and now?")
        return {"log": [first.text, second.text, again]}

    wf = one_node(ask, "usage_interrupts")
    rt = any_rt
    rt.register(wf)
    res = await rt.run(wf, {"log": []})
    assert res.status is RunStatus.ESCALATED
    assert await counted(rt.store, res.run_id) == 1  # committed with the interrupt
    res = await rt.resume(res.run_id, "yes")
    assert res.status is RunStatus.ESCALATED
    assert await counted(rt.store, res.run_id) == 2  # the first replayed, not counted again
    res = await rt.resume(res.run_id, "done")
    assert res.status is RunStatus.COMPLETED and res.state["log"] == ["ok", "ok", "done"]
    assert model.calls == 2
    assert await counted(rt.store, res.run_id) == 2
    replayed = [e for e in await rt.store.list_events(res.run_id) if e.type == "effect_replayed"]
    assert len(replayed) == 3  # first twice, second once: each replay read its record


async def test_a_call_before_a_node_retry_is_counted_once(any_rt: Runtime) -> None:
    model, tries = paid(), []

    async def flaky(state: S) -> dict[str, Any]:
        said = await model.chat("q")
        tries.append(1)
        if len(tries) == 1:
            raise RuntimeError("after the call")
        return {"log": [said.text]}

    wf = one_node(flaky, "usage_node_retry", retry=RetryPolicy(max_attempts=2, jitter=False))
    any_rt.register(wf)
    res = await any_rt.run(wf, {"log": []})
    assert res.status is RunStatus.COMPLETED and len(tries) == 2 and model.calls == 1
    assert await counted(any_rt.store, res.run_id) == 1


async def test_a_call_before_a_failure_is_counted_once_when_the_run_is_retried(
    any_rt: Runtime,
) -> None:
    model, tries = paid(), []

    async def fails_once(state: S) -> dict[str, Any]:
        said = await model.chat("q")
        tries.append(1)
        if len(tries) == 1:
            raise RuntimeError("after the call")
        return {"log": [said.text]}

    wf = one_node(fails_once, "usage_run_retry")
    rt = any_rt
    rt.register(wf)
    res = await rt.run(wf, {"log": []})
    assert res.status is RunStatus.FAILED
    assert await counted(rt.store, res.run_id) == 1  # committed with the failure
    res = await rt.resume(res.run_id)
    assert res.status is RunStatus.COMPLETED and model.calls == 1
    assert await counted(rt.store, res.run_id) == 1


async def test_a_fork_counts_its_own_calls_and_leaves_its_parents_alone(
    any_rt: Runtime,
) -> None:
    model = paid(2)

    async def ask(state: S) -> dict[str, Any]:
        return {"log": [(await model.chat("q")).text]}

    wf = one_node(ask, "usage_fork")
    rt = any_rt
    rt.register(wf)
    parent = await rt.run(wf, {"log": []})
    assert parent.status is RunStatus.COMPLETED
    fork = await (await rt.fork(parent.run_id, 0)).wait()
    assert fork.status is RunStatus.COMPLETED and model.calls == 2
    assert await counted(rt.store, parent.run_id) == 1
    assert await counted(rt.store, fork.run_id) == 1
    later = await (await rt.fork(parent.run_id, 1)).wait()  # after the call: nothing re-runs
    assert later.status is RunStatus.COMPLETED and model.calls == 2
    assert await counted(rt.store, later.run_id) == 0


async def test_a_key_less_event_of_an_older_tether_is_not_counted_twice() -> None:
    """A run parked by a tether that kept no journal key in ``model_call`` events: its replayed
    call's committed event stands for it, as it did then."""
    store, model = MemoryStore(), paid()

    async def ask(state: S) -> dict[str, Any]:
        said = await model.chat("q")
        return {"log": [said.text, interrupt("ok?")]}

    wf = one_node(ask, "usage_legacy")
    async with Runtime(store, workflows=[wf], recover=False) as rt:
        res = await rt.run(wf, {"log": []})
        assert res.status is RunStatus.ESCALATED
        kept = store._events[res.run_id]
        for i, e in enumerate(kept):
            if e.type == "model_call":  # as an older tether wrote it: without its key
                data = e.decoded()
                del data["key"]
                kept[i] = e._replace(data=serde.dumps(data))
        res = await rt.resume(res.run_id, "yes")
        assert res.status is RunStatus.COMPLETED and model.calls == 1
        calls = [e for e in await store.list_events(res.run_id) if e.type == "model_call"]
        assert len(calls) == 1 and "key" not in calls[0].data


# -- a durable sleep, on a fake clock ----------------------------------------------------------


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def clocked_store(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[[FakeClock], RunStore]]:
    if request.param == "postgres":
        from tests.graph.conftest import PG_DSN, pg_schema
        from tether.store.postgres import PostgresStore

        with pg_schema("tether_usage") as schema:
            yield lambda clock: PostgresStore(PG_DSN, schema=schema, clock=clock)
        return
    if request.param == "memory":
        yield MemoryStore
        return
    yield lambda clock: SqliteStore(tmp_path / "runs.db", clock=clock)


@pytest.fixture
async def sleepy_rt(
    clocked_store: Callable[[FakeClock], RunStore],
) -> AsyncIterator[tuple[Runtime, FakeClock]]:
    clock = FakeClock(T0)
    async with Runtime(clocked_store(clock), recover=False, clock=clock) as rt:
        yield rt, clock


async def test_a_call_before_a_durable_sleep_is_counted_once(
    sleepy_rt: tuple[Runtime, FakeClock],
) -> None:
    rt, clock = sleepy_rt
    model = paid()

    async def napper(state: S, ctx: RunContext) -> dict[str, Any]:
        said = await model.chat("q")
        await ctx.sleep(60)
        return {"log": [said.text]}

    wf = one_node(napper, "usage_sleep")
    rt.register(wf)
    handle = await rt.start(wf, {"log": []})
    while (await rt.get_run(handle.run_id)).owner is not None or rt.runs_here(handle.run_id):
        await asyncio.sleep(0.01)  # until it parks
    assert await counted(rt.store, handle.run_id) == 1  # committed when it parked
    clock.advance(60)
    assert await rt.recover_once() == [handle.run_id]
    res = await rt.wait(handle.run_id)
    assert res.status is RunStatus.COMPLETED and model.calls == 1
    assert await counted(rt.store, handle.run_id) == 1


# -- another runtime continues the run: the first one's memory is gone -------------------------


async def test_a_call_whose_runtime_stopped_mid_step_is_counted_once_by_the_next(
    shared_store: Callable[[], RunStore],
) -> None:
    """One task (a step of its own) and two parallel tasks: each made its call, then the
    runtime stopped before the step committed (``fast`` finished and was journaled with its
    events; ``slow`` and ``lone`` did not finish). The runtime that continues the run
    replays ``slow``'s and ``lone``'s calls and counts each once; ``fast``'s event comes from
    its node write."""
    model, called, gate = paid(3), asyncio.Event(), asyncio.Event()

    async def lone(state: S) -> dict[str, Any]:
        said = await model.chat("lone")
        called.set()
        await gate.wait()
        return {"log": [said.text]}

    async def fast(state: S) -> dict[str, Any]:
        return {"log": [(await model.chat("fast")).text]}

    async def slow(state: S) -> dict[str, Any]:
        said = await model.chat("slow")
        called.set()
        await gate.wait()
        return {"log": [said.text]}

    single = one_node(lone, "usage_lone")
    g = Graph(S, name="usage_pair")
    g.add_node("fast", fast).add_node("slow", slow)
    g.add_edge(START, "fast").add_edge(START, "slow").add_edge("fast", END).add_edge("slow", END)
    pair = g.compile()

    for wf, calls in ((single, 1), (pair, 2)):
        called.clear()
        async with Runtime(shared_store(), workflows=[wf]) as first:
            handle = await first.start(wf, {"log": []})
            await called.wait()
            while len(await first.store.get_node_writes(handle.run_id, 1)) < calls - 1:
                await asyncio.sleep(0.01)  # until fast's write is journaled
            assert await counted(first.store, handle.run_id) == 0  # all in memory still
        gate.set()
        async with Runtime(shared_store(), workflows=[wf], recover=True, poll_interval=0.05) as rt:
            res = await rt.wait(handle.run_id)
            assert res.status is RunStatus.COMPLETED and len(res.state["log"]) == calls
            assert await counted(rt.store, handle.run_id) == calls
            recovered = [
                e.node
                for e in await rt.store.list_events(handle.run_id)
                if e.type == "model_call" and e.data.get("recovered")
            ]
            assert recovered == (["n"] if wf is single else ["slow"])
        gate.clear()
    assert model.calls == 3
