"""A PostgreSQL restart mid-run costs the runs a pause, not a failure (throwaway server).

The server (``throwaway_pg``, a pgserver of this module's own) is stopped and started from the
test, ordered by events: runs are parked in a node, the server stops, the nodes go on (their
effects and commits now fail: the pooled connections are dead, new ones are refused), the test
waits until the store has noticed the outage (and a second runtime's ``wait()`` polls have
failed), then starts the server again. Every run must complete under its first lease (no
takeover, no ``unknown_effect_outcome``), every ``wait()`` return the result, and the log say
once that the server was unreachable, without tracebacks.

A commit whose reply is lost after it applied is not applied again: a fault injected right
after the real statement returns, and one injected before it is sent.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypedDict

import pytest

from tether import END, START, Graph, RunContext, RunStatus, Runtime
from tether.graph.retention import Retention
from tether.store.types import Commit, Event

from .throwaway_pg import ThrowawayPostgres

RUNS = 3
HANG_GUARD = 120.0  # seconds; only ever reached when something hangs


class S(TypedDict, total=False):
    n: int
    sent: int


async def until(cond: Callable[[], bool], what: str) -> None:
    """Poll ``cond`` (a hang guard, not a time bound)."""
    deadline = time.monotonic() + HANG_GUARD
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        await asyncio.sleep(0.01)


@pytest.fixture
async def schema(throwaway_pg: ThrowawayPostgres) -> AsyncIterator[str]:
    yield f"t_{uuid.uuid4().hex[:10]}"


def open_store(pg: ThrowawayPostgres, schema: str, **kw: Any) -> Any:
    from tether.store.postgres import PostgresStore

    return PostgresStore(pg.dsn, schema=schema, **kw)


async def test_runs_and_waits_ride_out_a_server_restart(
    throwaway_pg: ThrowawayPostgres, schema: str, caplog: pytest.LogCaptureFixture
) -> None:
    parked: set[str] = set()
    all_parked, go = asyncio.Event(), asyncio.Event()
    sent: dict[str, int] = {}
    next_step_at: list[float] = []

    async def first(state: S) -> dict[str, Any]:
        return {"n": 1}

    async def outage(state: S, ctx: RunContext) -> dict[str, Any]:
        parked.add(ctx.run_id)
        if len(parked) == RUNS:
            all_parked.set()
        await go.wait()  # released while the server is down

        def send() -> int:  # not idempotent: a lost intent would escalate the run
            sent[ctx.run_id] = sent.get(ctx.run_id, 0) + 1
            return 1

        return {"n": state["n"] + 1, "sent": await ctx.effect("send", send)}

    async def last(state: S) -> dict[str, Any]:
        next_step_at.append(time.monotonic())
        return {"n": state["n"] + 1}

    g = Graph(S, name="outage")
    g.add_node("first", first).add_node("outage", outage).add_node("last", last)
    g.add_edge(START, "first").add_edge("first", "outage").add_edge("outage", "last")
    g.add_edge("last", END)
    wf = g.compile()
    pg = throwaway_pg
    # the watcher's store gives up after 0.2 s, so its wait() sees the errors and must poll on
    watcher_store = open_store(pg, schema, retry_for=0.2)
    caplog.set_level(logging.INFO, logger="tether")
    async with (
        Runtime(open_store(pg, schema), owner="A", lease_ttl=60, workflows=[wf]) as rt,
        Runtime(watcher_store, owner="W", recover=False, workflows=[wf]) as watcher,
    ):
        store = rt.store
        handles = [await rt.start(wf, {"n": 0}) for _ in range(RUNS)]
        ids = [h.run_id for h in handles]
        waits = [asyncio.create_task(h.wait()) for h in handles]
        watches = [asyncio.create_task(watcher.wait(i)) for i in ids]
        await asyncio.wait_for(all_parked.wait(), HANG_GUARD)
        try:
            await asyncio.to_thread(pg.stop)
            go.set()
            await until(lambda: store.outage.down_since is not None, "the runs hit the outage")
            await until(lambda: watcher_store.outage.outages >= 1, "the watcher hit it too")
            await asyncio.sleep(0.3)  # a few failed polls and retries more (not a bound)
        finally:
            await asyncio.to_thread(pg.start)
        back = time.monotonic()
        results = await asyncio.wait_for(asyncio.gather(*waits), HANG_GUARD)
        watched = await asyncio.wait_for(asyncio.gather(*watches), HANG_GUARD)
        records = [await rt.get_run(i) for i in ids]
        effects = [await store.list_effects(i) for i in ids]
        events = [await store.list_events(i) for i in ids]
    print(
        f"\nserver back -> next step: {min(next_step_at) - back:.3f} s (first run), "
        f"{max(next_step_at) - back:.3f} s (last of {RUNS})"
    )
    for res in (*results, *watched):
        assert (res.status, res.state) == (RunStatus.COMPLETED, {"n": 3, "sent": 1})
    for rec in records:
        assert (rec.status, rec.lease_token) == (RunStatus.COMPLETED, 1)  # never taken over
    assert sent == dict.fromkeys(ids, 1)  # each effect ran once ...
    for effs in effects:  # ... and its intent was recorded once, not re-recorded
        assert [(e.status, e.attempts) for e in effs] == [("done", 1)]
    for evs in events:  # no commit applied twice: one step_finished per step, seqs unbroken
        assert [e.seq for e in evs] == list(range(1, len(evs) + 1))
        assert [e.step for e in evs if e.type == "step_finished"] == [1, 2, 3]
        assert "escalated" not in {e.type for e in evs}
    ours = [r for r in caplog.records if r.name.startswith("tether")]
    assert not [r for r in ours if r.exc_info], "no tracebacks for an outage"
    down = [r.getMessage() for r in ours if "unreachable" in r.getMessage()]
    up = [r.getMessage() for r in ours if "reachable again" in r.getMessage()]
    assert len(down) == 2 and len(up) == 2, (down, up)  # one each for either runtime's store
    assert all(r.levelno == logging.WARNING for r in ours if "unreachable" in r.getMessage())


async def test_the_background_sweeps_log_one_line_per_outage(
    throwaway_pg: ThrowawayPostgres, schema: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A store that gives up fast (``retry_for=0.1``) fails every recovery and retention sweep
    while the server is down: one WARNING, then one INFO once a sweep succeeds again, no
    traceback per sweep."""
    g = Graph(S, name="idle")
    g.add_node("noop", lambda s: {"n": 1})
    g.add_edge(START, "noop").add_edge("noop", END)
    wf = g.compile()
    store = open_store(throwaway_pg, schema, retry_for=0.1)
    claims = {"failed": 0, "after": 0}
    purges = {"failed": 0, "after": 0}

    def counting(real: Any, counts: dict[str, int]) -> Any:
        async def call(*a: Any, **kw: Any) -> Any:
            try:
                out = await real(*a, **kw)
            except Exception:
                counts["failed"] += 1
                raise
            counts["after"] += 1
            return out

        return call

    store.claim_runs = counting(store.claim_runs, claims)
    # a retention sweep purges fired timers first, then runs: an outage fails the first
    store.purge_timers = counting(store.purge_timers, purges)
    store.purge_runs = counting(store.purge_runs, purges)
    retention = Retention(finished_ttl=3600, sweep_interval=0.02)
    caplog.set_level(logging.INFO, logger="tether")
    async with Runtime(store, owner="R", poll_interval=0.02, retention=retention, workflows=[wf]):
        await until(lambda: claims["after"] and purges["after"], "both sweeps ran")
        try:
            await asyncio.to_thread(throwaway_pg.stop)
            await until(lambda: min(claims["failed"], purges["failed"]) >= 3, "sweeps failed")
        finally:
            await asyncio.to_thread(throwaway_pg.start)
        claims["after"] = purges["after"] = 0
        await until(lambda: min(claims["after"], purges["after"]) >= 2, "sweeps work again")
    ours = [r for r in caplog.records if r.name == "tether.runtime"]
    assert not [r for r in ours if r.exc_info]
    msgs = [r.getMessage() for r in ours]
    assert len([m for m in msgs if "background sweeps" in m and "unreachable" in m]) == 1, msgs
    assert len([m for m in msgs if "background sweeps" in m and "reachable again" in m]) == 1, msgs


class Faulty:
    """Wraps ``PostgresStore._commit_once``: the first call fails with a dropped connection,
    ``after`` the real statement ran (its reply lost) or before it was sent."""

    def __init__(self, real: Callable[..., Awaitable[Any]], after: bool) -> None:
        self.real, self.after, self.calls = real, after, 0

    async def __call__(self, *a: Any) -> Any:
        import psycopg

        self.calls += 1
        if self.calls > 1:
            return await self.real(*a)
        if self.after:
            await self.real(*a)
        raise psycopg.OperationalError("server closed the connection unexpectedly")


@pytest.mark.parametrize("after", [True, False], ids=["reply-lost", "never-sent"])
async def test_a_commit_whose_connection_dropped_applies_exactly_once(
    throwaway_pg: ThrowawayPostgres, schema: str, after: bool
) -> None:
    g = Graph(S, name="once")
    g.add_node("noop", lambda s: {"n": 1})
    g.add_edge(START, "noop").add_edge("noop", END)
    wf = g.compile()
    async with Runtime(open_store(throwaway_pg, schema), owner="A", recover=False) as rt:
        store = rt.store
        handle = await rt.start(wf, {"n": 0}, execute=False)
        rid = handle.run_id
        lease = await store.acquire_lease(rid, "A", 60)
        assert lease is not None
        run = await store.get_run(rid)
        seq = run.event_seq
        commit = Commit(
            events=[
                Event(rid, seq + 1, "note", 1.0, None, None, {"i": 1}),
                Event(rid, seq + 2, "note", 2.0, None, None, {"i": 2}),
            ]
        )
        faulty = Faulty(store._commit_once, after)
        store._commit_once = faulty
        rec = await store.commit(rid, lease.token, commit)
        notes = [e for e in await store.list_events(rid) if e.type == "note"]
    assert faulty.calls == (1 if after else 2)  # applied: read back, not sent again
    assert rec.event_seq == seq + 2
    assert [(e.seq, e.data) for e in notes] == [(seq + 1, {"i": 1}), (seq + 2, {"i": 2})]


@pytest.mark.parametrize("after", [True, False], ids=["reply-lost", "never-sent"])
async def test_a_submit_whose_connection_dropped_creates_the_run_once(
    throwaway_pg: ThrowawayPostgres, schema: str, after: bool
) -> None:
    """A submit is one statement: resent after the drop, it finds its own row (reply lost) or
    inserts it (never sent); either way one run, its events once, created (not a duplicate)."""
    g = Graph(S, name="once")
    g.add_node("noop", lambda s: {"n": 1})
    g.add_edge(START, "noop").add_edge("noop", END)
    wf = g.compile()
    async with Runtime(open_store(throwaway_pg, schema), owner="A", recover=False) as rt:
        store = rt.store
        faulty = Faulty(store._submit_once, after)
        store._submit_once = faulty
        handle = await rt.start(wf, {"n": 0}, execute=False, idempotency_key="order-1234")
        again = await rt.start(wf, {"n": 0}, execute=False, idempotency_key="order-1234")
        runs = await store.list_runs()
        events = await store.list_events(handle.run_id)
        transitions = await store.list_transitions(handle.run_id)
    assert faulty.calls == 3  # the failed send, its resend, the second submit
    assert again.run_id == handle.run_id and [r.run_id for r in runs] == [handle.run_id]
    assert [e.seq for e in events] == list(range(1, len(events) + 1)) and events
    assert [(t.src, t.dst) for t in transitions] == [
        (None, RunStatus.RECEIVED),
        (RunStatus.RECEIVED, RunStatus.PLANNED),
    ]


async def test_the_lease_keepers_connection_is_replaced_at_once_after_a_restart(
    throwaway_pg: ThrowawayPostgres, schema: str
) -> None:
    """The heartbeat thread's own connection died with the restart: the next round reconnects
    and renews within the same call, instead of failing a round (a third of the TTL)."""
    g = Graph(S, name="kept")
    g.add_node("noop", lambda s: {"n": 1})
    g.add_edge(START, "noop").add_edge("noop", END)
    wf = g.compile()
    async with Runtime(open_store(throwaway_pg, schema), owner="A", recover=False) as rt:
        store = rt.store
        rid = (await rt.start(wf, {"n": 0}, execute=False)).run_id
        lease = await store.acquire_lease(rid, "A", 60)
        assert lease is not None
        renewer = store.lease_renewer()
        try:
            assert (
                await asyncio.to_thread(renewer.renew_leases, "A", {rid: lease.token}, 60) == set()
            )
            await asyncio.to_thread(throwaway_pg.stop)
            await asyncio.to_thread(throwaway_pg.start)
            assert (
                await asyncio.to_thread(renewer.renew_leases, "A", {rid: lease.token}, 60) == set()
            )
        finally:
            renewer.close()


async def test_a_run_the_store_gave_up_on_is_left_for_recovery_not_failed(
    throwaway_pg: ThrowawayPostgres, schema: str, caplog: pytest.LogCaptureFixture
) -> None:
    """An outage longer than ``retry_for``: the step commit finally raises. The run is not
    failed for it (the store may be back by the time a FAILED commit would go out): it stays
    ACTIVE, recovery resumes it once its lease expires, and ``wait()`` returns the result."""
    import psycopg

    g = Graph(S, name="left")
    g.add_node("a", lambda s: {"n": 1}).add_node("b", lambda s: {"n": s["n"] + 1})
    g.add_edge(START, "a").add_edge("a", "b").add_edge("b", END)
    wf = g.compile()
    store = open_store(throwaway_pg, schema, retry_for=0.2)
    real = store._commit_once
    down = {"on": True}

    async def steps_unreachable(conn: Any, run_id: str, token: Any, now: float, c: Commit) -> Any:
        if down["on"] and c.checkpoint is not None:  # only the step commits: the rest lands
            raise psycopg.OperationalError("server closed the connection unexpectedly")
        return await real(conn, run_id, token, now, c)

    store._commit_once = steps_unreachable
    caplog.set_level(logging.INFO, logger="tether")
    async with Runtime(store, owner="A", lease_ttl=1.0, poll_interval=0.05, workflows=[wf]) as rt:
        handle = await rt.start(wf, {"n": 0})
        waiting = asyncio.create_task(handle.wait())
        await until(lambda: handle.run_id not in rt._tasks, "the run stopped here")
        down["on"] = False
        res = await asyncio.wait_for(waiting, HANG_GUARD)
    assert (res.status, res.state, res.record.lease_token) == (RunStatus.COMPLETED, {"n": 2}, 2)
    msgs = [r.getMessage() for r in caplog.records if r.name == "tether.runtime"]
    assert len([m for m in msgs if "the runs it stopped are not failed" in m]) == 1, msgs
    assert not [m for m in msgs if "runtime error" in m], msgs


async def test_a_runtime_that_recovers_nothing_leaves_it_too_for_one_that_does(
    throwaway_pg: ThrowawayPostgres, schema: str, caplog: pytest.LogCaptureFixture
) -> None:
    """``recover=False`` (the CLI, ``invoke`` on a shared store): an unreachable store stops
    the run there as well, without a traceback and without a FAILED that could land a moment
    later; a recovering runtime started afterwards finishes it."""
    import psycopg

    g = Graph(S, name="left_alone")
    g.add_node("a", lambda s: {"n": 1}).add_node("b", lambda s: {"n": s["n"] + 1})
    g.add_edge(START, "a").add_edge("a", "b").add_edge("b", END)
    wf = g.compile()
    store = open_store(throwaway_pg, schema, retry_for=0.2)
    real = store._commit_once

    async def steps_unreachable(conn: Any, run_id: str, token: Any, now: float, c: Commit) -> Any:
        if c.checkpoint is not None:  # only the step commits fail: a FAILED commit would land
            raise psycopg.OperationalError("server closed the connection unexpectedly")
        return await real(conn, run_id, token, now, c)

    store._commit_once = steps_unreachable
    caplog.set_level(logging.INFO, logger="tether")
    async with Runtime(store, owner="A", lease_ttl=1.0, recover=False, workflows=[wf]) as rt:
        handle = await rt.start(wf, {"n": 0})
        await until(lambda: handle.run_id not in rt._tasks, "the run stopped here")
        stopped = await rt.store.get_run(handle.run_id)
    assert stopped.status not in {RunStatus.FAILED, RunStatus.COMPLETED}, stopped.status
    msgs = [r.getMessage() for r in caplog.records if r.name == "tether.runtime"]
    assert not [m for m in msgs if "runtime error" in m], msgs
    assert len([m for m in msgs if "the runs it stopped are not failed" in m]) == 1, msgs
    store = open_store(throwaway_pg, schema)
    async with Runtime(store, owner="B", lease_ttl=1.0, poll_interval=0.05, workflows=[wf]) as rt:
        res = await asyncio.wait_for(rt.wait(handle.run_id), HANG_GUARD)
    assert (res.status, res.state) == (RunStatus.COMPLETED, {"n": 2})
