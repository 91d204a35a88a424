"""Durable sleep and interrupt timeouts, on the fake clock, against memory and SQLite (a
shared file: several runtimes stand for several processes)."""

from __future__ import annotations

import asyncio
import datetime
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest

from tether import END, START, Graph, RunContext, RunStateError, RunStatus, Runtime, append
from tether.graph.context import interrupt
from tether.graph.interrupt_timeout import INTERRUPT_TIMEOUT
from tether.store.memory import MemoryStore
from tether.store.protocol import RunStore
from tether.store.sqlite import SqliteStore
from tether.store.timers import TimerStore
from tether.testing.clock import FakeClock

T0 = 1_700_000_000.0
CALLS: list[str] = []


class S(TypedDict):
    log: Annotated[list[str], append]


async def until(check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Wait on a condition (generous deadline: a loaded 2-core machine)."""
    for _ in range(6000):
        if await check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"gave up waiting for {what}")


async def parked(rt: Runtime, run_id: str) -> None:
    async def check() -> bool:
        run = await rt.get_run(run_id)
        return run.owner is None and not rt.runs_here(run_id)

    await until(check, f"run {run_id} to park")


async def napper(s: Any, ctx: RunContext) -> dict[str, Any]:
    CALLS.append("napper")
    await ctx.effect("before", lambda: CALLS.append("before"))
    await ctx.sleep(60)
    await ctx.effect("after", lambda: CALLS.append("after"))
    return {"log": ["woke"]}


def sleepy() -> Any:
    g = Graph(S, name="sleepy")
    g.add_node("napper", napper)
    g.add_node("other", lambda s: CALLS.append("other") or {"log": ["other"]})
    g.add_edge(START, "napper")
    g.add_edge(START, "other")  # a sibling in the same step: journaled, never re-run
    g.add_edge("napper", END)
    g.add_edge("other", END)
    return g.compile()


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    shared: dict[str, MemoryStore] = {}
    if request.param == "postgres":
        from tests.graph.conftest import PG_DSN, pg_schema
        from tether.store.postgres import PostgresStore

        with pg_schema("tether_timers") as schema:
            yield lambda clock: PostgresStore(PG_DSN, schema=schema, clock=clock)
        return

    def make(clock: FakeClock) -> RunStore:
        if request.param == "memory":
            return shared.setdefault("m", MemoryStore(clock))
        return SqliteStore(tmp_path / "runs.db", clock=clock)

    yield make


@pytest.fixture
def clock() -> FakeClock:
    CALLS.clear()
    return FakeClock(T0)


@pytest.fixture
async def rt(
    make_store: Callable[[FakeClock], RunStore], clock: FakeClock
) -> AsyncIterator[Runtime]:
    async with Runtime(make_store(clock), recover=False, clock=clock) as runtime:
        yield runtime


async def test_sleep_parks_without_a_slot_and_wakes_when_due(rt: Runtime, clock: FakeClock) -> None:
    wf = sleepy()
    handle = await rt.start(wf, {})
    await parked(rt, handle.run_id)
    run = await rt.get_run(handle.run_id)
    assert run.status is RunStatus.EXECUTING  # still ACTIVE, held by nobody
    assert run.available_at == T0 + 60
    events = [e for e in await rt.store.list_events(handle.run_id) if e.type == "sleeping"]
    assert [e.data["until"] for e in events] == [T0 + 60]
    assert sorted(CALLS) == ["before", "napper", "other"]
    rt.register(wf)
    clock.advance(59)
    assert await rt.recover_once() == []  # not due yet
    clock.advance(1)
    assert await rt.recover_once() == [handle.run_id]
    res = await rt.wait(handle.run_id, timeout=60)
    assert res.status is RunStatus.COMPLETED
    assert sorted(res.state["log"]) == ["other", "woke"]
    # the node re-ran (the sleep returned at once: its journaled deadline had passed); the
    # sibling and the effect before the sleep did not
    assert sorted(CALLS) == ["after", "before", "napper", "napper", "other"]


async def test_a_reexecuted_node_keeps_its_first_deadline(rt: Runtime, clock: FakeClock) -> None:
    wf = sleepy()
    rt.register(wf)
    handle = await rt.start(wf, {})
    await parked(rt, handle.run_id)
    clock.advance(30)  # a re-run now must not push the deadline to T0 + 90
    await rt.store.commit(handle.run_id, None, _wake_now())
    assert await rt.recover_once() == [handle.run_id]
    await parked(rt, handle.run_id)
    assert (await rt.get_run(handle.run_id)).available_at == T0 + 60
    clock.advance(30)
    assert await rt.recover_once() == [handle.run_id]
    assert (await rt.wait(handle.run_id, timeout=60)).status is RunStatus.COMPLETED


def _wake_now() -> Any:
    from tether.store.types import Commit

    return Commit(available_at=0.0)


async def test_sleep_until_a_past_time_returns_at_once(rt: Runtime, clock: FakeClock) -> None:
    async def node(s: Any, ctx: RunContext) -> dict[str, Any]:
        await ctx.sleep_until(T0 - 5)
        await ctx.sleep(0)
        return {"log": ["done"]}

    g = Graph(S, name="past")
    g.add_node("n", node)
    g.add_edge(START, "n")
    g.add_edge("n", END)
    res = await rt.run(g.compile(), {})
    assert res.status is RunStatus.COMPLETED and res.state["log"] == ["done"]
    assert not [e for e in await rt.store.list_events(res.run_id) if e.type == "sleeping"]


# -- interrupt timeouts -------------------------------------------------------------------
def approval(**kw: Any) -> Any:
    def ask(s: Any) -> dict[str, Any]:
        answer = interrupt({"question": "ship it?"}, timeout=7200, **kw)
        return {"log": [f"answer:{answer}"]}

    g = Graph(S, name="approval")
    g.add_node("ask", ask, destinations=["escalate_to_manager"])  # reachable on timeout
    g.add_node("approve", lambda s: CALLS.append("approve") or {"log": ["approved"]})
    g.add_node("escalate_to_manager", lambda s: {"log": ["manager"]})
    g.add_edge(START, "ask")
    g.add_edge("ask", "approve")
    g.add_edge("approve", END)
    g.add_edge("escalate_to_manager", END)
    return g.compile()


async def test_an_unanswered_interrupt_takes_its_timeout_edge(
    rt: Runtime, clock: FakeClock
) -> None:
    wf = approval(on_timeout="escalate_to_manager")
    res = await rt.run(wf, {})
    assert res.status is RunStatus.ESCALATED
    (item,) = res.interrupts
    assert item["timeout_at"] == T0 + 7200
    assert item["on_timeout"] == "escalate_to_manager"
    store = rt.store
    assert isinstance(store, TimerStore)
    (timer,) = await store.list_timers(res.run_id)
    assert (timer.kind, timer.fire_at) == (INTERRUPT_TIMEOUT, T0 + 7200)
    clock.advance(7199)
    assert await rt.fire_timers() == 0
    clock.advance(1)
    assert await rt.fire_timers() == 1
    assert await rt.fire_timers() == 0  # fired once
    run = await rt.get_run(res.run_id)
    assert run.status is RunStatus.EXECUTING and run.owner is None  # any worker continues it
    assert [t.actor for t in await store.list_transitions(res.run_id)][-1] == "timer"
    assert await rt.recover_once() == [res.run_id]
    done = await rt.wait(res.run_id, timeout=60)
    assert done.status is RunStatus.COMPLETED
    assert done.state["log"] == ["manager"]  # not the node's own edge to approve
    assert CALLS == []
    with pytest.raises(RunStateError):  # a late answer is refused
        await rt.resume(res.run_id, answers={item["id"]: "yes"})


async def test_a_timeout_with_a_default_returns_it(rt: Runtime, clock: FakeClock) -> None:
    wf = approval(default="no answer")
    res = await rt.run(wf, {})
    clock.advance(7200)
    assert await rt.fire_timers() == 1
    assert await rt.recover_once() == [res.run_id]
    done = await rt.wait(res.run_id, timeout=60)
    assert done.state["log"] == ["answer:no answer", "approved"]


async def test_an_answered_interrupt_never_times_out(rt: Runtime, clock: FakeClock) -> None:
    wf = approval(on_timeout="escalate_to_manager")
    res = await rt.run(wf, {})
    store = rt.store
    assert isinstance(store, TimerStore)
    (timer,) = await store.list_timers(res.run_id)
    clock.advance(100)
    done = await rt.resume(res.run_id, "yes")
    assert done.status is RunStatus.COMPLETED
    assert done.state["log"] == ["answer:yes", "approved"]
    assert await store.list_timers(res.run_id) == []  # cancelled by the answer
    # even a timer that survived (its cancel failed, a race) finds the run answered
    await store.add_timer(timer)
    clock.advance(7200)
    assert await rt.fire_timers() == 1
    after = await rt.get_run(res.run_id)
    assert after.status is RunStatus.COMPLETED and after.event_seq == done.record.event_seq


async def test_a_timer_fires_once_with_three_runtimes(
    make_store: Callable[[FakeClock], RunStore], clock: FakeClock
) -> None:
    wf = approval(on_timeout="escalate_to_manager")
    rts = [Runtime(make_store(clock), workflows=[wf], recover=False, clock=clock) for _ in range(3)]
    for r in rts:
        await r.open()
    try:
        res = await rts[0].run(wf, {})
        clock.advance(7200)
        fired = await asyncio.gather(*(r.fire_timers() for r in rts))
        assert sum(fired) == 1
        trs = [t for t in await rts[1].store.list_transitions(res.run_id) if t.actor == "timer"]
        assert len(trs) == 1
    finally:
        for r in rts:
            await r.close()


async def test_a_runtime_that_cannot_continue_the_run_leaves_its_timer_alone(
    make_store: Callable[[FakeClock], RunStore], clock: FakeClock
) -> None:
    """Workers split by workflow: one that does not know the run's workflow claimed its
    interrupt timeout, failed to resume it, and held the timer for CLAIM_TTL (30 s) each time,
    so the timeout fired late (a 2 s timeout a minute late with two such workers)."""
    wf = approval(on_timeout="escalate_to_manager")
    knows = Runtime(make_store(clock), workflows=[wf], recover=False, clock=clock)
    other = Runtime(make_store(clock), workflows=[sleepy()], recover=False, clock=clock)
    await knows.open()
    await other.open()
    try:
        res = await knows.run(wf, {})
        clock.advance(7200)
        assert await other.fire_timers() == 0
        store = knows.store
        assert isinstance(store, TimerStore)
        (timer,) = await store.list_timers(res.run_id)
        assert timer.claimed_by is None  # left to a runtime that knows the workflow
        assert await knows.fire_timers() == 1
        assert await knows.recover_once() == [res.run_id]
        done = await knows.wait(res.run_id, timeout=60)
        assert done.state["log"] == ["manager"]
    finally:
        await other.close()
        await knows.close()


async def test_an_on_timeout_naming_no_node_fails_the_step_when_it_parks(
    rt: Runtime, clock: FakeClock
) -> None:
    """A typo in ``on_timeout``: before, the run parked as asked and failed with
    InvalidRouteError only when nobody answered, two hours later; now the step fails at once,
    the node named, no timer left to fire."""
    res = await rt.run(approval(on_timeout="escalate_to_manger"), {})
    assert res.status is RunStatus.FAILED and res.error is not None
    assert res.error["type"] == "InvalidRouteError" and res.error["node"] == "ask"
    assert "interrupt(on_timeout='escalate_to_manger') names no node" in res.error["message"]
    store = rt.store
    assert isinstance(store, TimerStore)
    assert await store.list_timers(res.run_id) == []
    ended = await rt.run(approval(on_timeout=END), {})  # END is a target too
    assert ended.status is RunStatus.ESCALATED
    clock.advance(7200)
    assert await rt.fire_timers() == 1
    assert await rt.recover_once() == [ended.run_id]
    assert (await rt.wait(ended.run_id, timeout=60)).status is RunStatus.COMPLETED


def test_interrupt_timeout_arguments_are_checked() -> None:
    from tether.core.errors import InvalidInputError
    from tether.graph.interrupt_timeout import NO_DEFAULT, make_interrupt

    with pytest.raises(InvalidInputError, match="exactly one of"):
        make_interrupt(None, 0, 10, None, NO_DEFAULT)
    with pytest.raises(InvalidInputError, match="exactly one of"):
        make_interrupt(None, 0, 10, "x", "both")
    with pytest.raises(InvalidInputError, match="need a timeout"):
        make_interrupt(None, 0, None, "x", NO_DEFAULT)
    with pytest.raises(InvalidInputError, match="> 0"):
        make_interrupt(None, 0, -1, "x", NO_DEFAULT)
    with pytest.raises(InvalidInputError, match="after 9999-12-31"):
        make_interrupt(None, 0, 1e300, "x", NO_DEFAULT)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda ctx: ctx.sleep(1e300), "after 9999-12-31"),
        (lambda ctx: ctx.sleep_until(1.7e308), "after 9999-12-31"),
        (lambda ctx: ctx.sleep_until(datetime.datetime(2030, 1, 1)), r"value.timestamp\(\)"),
        (lambda ctx: ctx.sleep(datetime.timedelta(hours=1)), r"value.total_seconds\(\)"),
    ],
)
async def test_a_sleep_that_can_never_end_or_is_no_number_is_refused(
    rt: Runtime, call: Callable[[RunContext], Awaitable[None]], message: str
) -> None:
    """``ctx.sleep(1e300)`` parked the run until 1e300: it stayed EXECUTING for good, its
    ``wait()`` with it, and no date could show when it was due. A datetime got a message
    that did not say what to pass instead."""

    async def node(s: Any, ctx: RunContext) -> dict[str, Any]:
        await call(ctx)
        return {"log": ["woke"]}

    g = Graph(S, name="never")
    g.add_node("n", node)
    g.add_edge(START, "n")
    g.add_edge("n", END)
    res = await rt.run(g.compile(), {})
    assert res.status is RunStatus.FAILED and res.error is not None
    assert res.error["type"] == "InvalidInputError"
    assert re.search(message, res.error["message"]), res.error["message"]


async def test_a_runtime_that_claims_nothing_takes_its_sleeping_run_back() -> None:
    """``wf.ainvoke`` (a runtime with recover=False) waits through a durable sleep."""

    async def node(s: Any, ctx: RunContext) -> dict[str, Any]:
        await ctx.sleep(1.2)  # over INLINE_SLEEP: parks
        return {"log": ["done"]}

    g = Graph(S, name="invoked_nap")
    g.add_node("n", node)
    g.add_edge(START, "n")
    g.add_edge("n", END)
    store = MemoryStore()
    state = await asyncio.wait_for(g.compile().ainvoke({}, store=store), 120)
    assert state["log"] == ["done"]
    (run,) = await store.list_runs()
    assert [e.type for e in await store.list_events(run.run_id)].count("sleeping") == 1


async def test_purge_drops_timers_that_fired_long_ago(rt: Runtime, clock: FakeClock) -> None:
    from tether.graph.timers import HANDLERS, register_handler
    from tether.store.timers import Timer

    seen: list[str] = []

    async def note(host: Any, timer: Timer) -> None:
        seen.append(timer.timer_id)

    register_handler("test_note", note)  # a kind of its own (approval deadlines will be one)
    rt.register(sleepy())  # a runtime that knows no workflow fires no timer
    try:
        store = rt.store
        assert isinstance(store, TimerStore)
        await store.add_timer(Timer("t1", None, "test_note", T0 + 5, {}))
        assert await rt.fire_timers() == 0
        clock.advance(5)
        assert await rt.fire_timers() == 1
        assert seen == ["t1"]
        await rt.purge(3600)
        assert len(await store.list_timers(pending=False)) == 1  # fired just now
        clock.advance(3601)
        await rt.purge(3600)
        assert await store.list_timers(pending=False) == []
    finally:
        del HANDLERS["test_note"]


async def test_a_runtime_stopped_while_firing_gives_its_claimed_timers_back(
    rt: Runtime, clock: FakeClock
) -> None:
    """A graceful shutdown cancelled a handler mid-way: its timer and the rest of the claimed
    batch used to stay claimed for CLAIM_TTL (30 s), so no other worker fired them meanwhile."""
    from tether.graph.timers import HANDLERS, register_handler
    from tether.store.timers import Timer

    entered = asyncio.Event()

    async def stuck(host: Any, timer: Timer) -> None:
        entered.set()
        await asyncio.Event().wait()  # until the runtime stops

    register_handler("test_stuck", stuck)
    rt.register(sleepy())
    try:
        store = rt.store
        assert isinstance(store, TimerStore)
        for tid in ("t1", "t2", "t3"):
            await store.add_timer(Timer(tid, None, "test_stuck", T0 + 5, {}))
        clock.advance(5)
        firing = asyncio.create_task(rt.fire_timers())
        await asyncio.wait_for(entered.wait(), 120)
        firing.cancel()
        with pytest.raises(asyncio.CancelledError):
            await firing
        pending = await store.list_timers()
        assert [(t.timer_id, t.claimed_by) for t in pending] == [
            ("t1", None),
            ("t2", None),
            ("t3", None),
        ]
        heir = await store.claim_due_timers("heir", 30, kinds=["test_stuck"])
        assert [t.timer_id for t in heir] == ["t1", "t2", "t3"]  # no claim to wait out
    finally:
        del HANDLERS["test_stuck"]


async def test_taking_back_a_run_that_parked_again_elsewhere_waits_for_its_new_deadline(
    rt: Runtime, clock: FakeClock
) -> None:
    from tether.graph.timers import take_back
    from tether.store.types import Commit

    wf = sleepy()
    rt.register(wf)
    handle = await rt.start(wf, {})
    await parked(rt, handle.run_id)
    clock.advance(60)
    # meanwhile another runtime ran it and it parked again, until later
    await rt.store.commit(handle.run_id, None, Commit(available_at=T0 + 500))
    await take_back(rt, handle.run_id, T0 + 60)
    run = await rt.get_run(handle.run_id)
    assert run.owner is None and not rt.runs_here(handle.run_id)
    clock.set(T0 + 500)
    await take_back(rt, handle.run_id, T0 + 500)
    assert (await rt.wait(handle.run_id, timeout=60)).status is RunStatus.COMPLETED


async def test_parallel_interrupts_time_out_once_all_of_them_are_due(
    rt: Runtime, clock: FakeClock
) -> None:
    def asker(name: str, timeout: float) -> Any:
        def node(s: Any) -> dict[str, Any]:
            return {"log": [f"{name}:{interrupt(name, timeout=timeout, default='late')}"]}

        return node

    g = Graph(S, name="two_asks")
    g.add_node("a", asker("a", 100))
    g.add_node("b", asker("b", 200))
    g.add_edge(START, "a")
    g.add_edge(START, "b")
    g.add_edge("a", END)
    g.add_edge("b", END)
    wf = g.compile()
    res = await rt.run(wf, {})
    assert sorted(i["timeout_at"] for i in res.interrupts) == [T0 + 100, T0 + 200]
    clock.advance(100)
    assert await rt.fire_timers() == 1  # a's timer: b is not due, so nothing is answered
    assert (await rt.get_run(res.run_id)).status is RunStatus.ESCALATED
    clock.advance(100)
    assert await rt.fire_timers() == 1  # b's timer answers both
    assert await rt.recover_once() == [res.run_id]
    done = await rt.wait(res.run_id, timeout=60)
    assert sorted(done.state["log"]) == ["a:late", "b:late"]
