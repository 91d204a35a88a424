"""Run-level retries with backoff and the dead letter (``compile(run_retry=RunRetry(...))``),
against memory, SQLite and PostgreSQL, on a hand-moved clock: a run that fails with a retryable
error goes back to the queue (FAILED → PLANNED, claimable from ``now + backoff``), any runtime
resumes it when due, effects are not repeated; after the last attempt it is dead-lettered and
``retry``/``requeue`` put it back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypedDict

import pytest

from tether import END, START, Graph, RunContext, RunStatus, Runtime
from tether.core.errors import (
    InvalidInputError,
    RunStateError,
    ToolTransientError,
)
from tether.graph.run_retry import RunRetry, is_dead_lettered, is_retryable
from tether.store.memory import MemoryStore
from tether.store.protocol import RunStore
from tether.testing.clock import FakeClock

from .conftest import PG_DSN, pg_schema


class S(TypedDict, total=False):
    n: int
    out: str
    side: str


CALLS: dict[str, int] = {}
FAIL: dict[str, list[BaseException]] = {}
"""Per node: the errors its next calls raise, in order (empty: it succeeds)."""


def _count(key: str) -> int:
    CALLS[key] = CALLS.get(key, 0) + 1
    return CALLS[key]


async def work(s: S, ctx: RunContext) -> dict[str, Any]:
    receipt = await ctx.effect("charge", lambda: f"charged #{_count('charge')}")
    _count("work")
    if FAIL.get("work"):
        raise FAIL["work"].pop(0)
    return {"out": receipt}


def side(s: S) -> dict[str, Any]:
    _count("side")
    return {"side": "done"}


def build(name: str, policy: RunRetry | None, *, sibling: bool = False) -> Any:
    g = Graph(S, name=name)
    g.add_node("prep", lambda s: {"n": 1})
    g.add_node("work", work)
    g.add_edge(START, "prep").add_edge("prep", "work").add_edge("work", END)
    if sibling:  # ``side`` runs in the same step as ``work``
        g.add_node("side", side)
        g.add_edge("prep", "side").add_edge("side", END)
    return g.compile(run_retry=policy)


# the tests claim by hand on a clock they move (the ``rt`` fixture's runtime does not take a
# due retry back by itself, see there)
POLICY = RunRetry(
    max_attempts=3, initial_interval=1000.0, backoff_factor=2.0, max_interval=1e4, jitter=False
)
WF = build("retry_wf", POLICY)
SIBLINGS = build("retry_siblings", POLICY, sibling=True)
PLAIN = build("retry_plain", None)


@pytest.fixture(autouse=True)
def _reset() -> Iterator[None]:
    CALLS.clear()
    FAIL.clear()
    yield
    FAIL.clear()


Opener = Callable[[FakeClock], RunStore]


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    """Store instances over one database, each on the given clock (two runtimes sharing a
    store stand for two processes; the memory store is one shared object)."""
    if request.param == "memory":
        shared: list[MemoryStore] = []

        def memory(clock: FakeClock) -> RunStore:
            if not shared:
                shared.append(MemoryStore(clock=clock))
            return shared[0]

        yield memory
        return
    if request.param == "sqlite":
        from tether.store.sqlite import SqliteStore

        path = tmp_path / "retries.db"
        yield lambda clock: SqliteStore(path, clock=clock)
        return
    from tether.store.postgres import PostgresStore

    with pg_schema("tether_retry") as schema:
        yield lambda clock: PostgresStore(PG_DSN, schema=schema, clock=clock)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def rt(opener: Opener, clock: FakeClock) -> AsyncIterator[Runtime]:
    wfs = [WF, SIBLINGS, PLAIN]
    async with Runtime(opener(clock), workflows=wfs, recover=False, clock=clock) as runtime:
        # the tests claim by hand on the clock they move; the runtime's own take-back of a due
        # retry would race those claims once the clock passes the delay (it lost one in CI)
        runtime._take_back_when_due = lambda run_id, until: None  # type: ignore[method-assign]
        yield runtime


async def until(check: Callable[[], Awaitable[bool]], what: str, deadline: float = 60.0) -> None:
    """Wait until ``check()`` holds (a generous deadline for a loaded machine)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    while not await check():
        if loop.time() > end:
            raise AssertionError(f"timed out waiting until {what}")
        await asyncio.sleep(0.005)


async def settle(rt: Runtime, run_id: str) -> Any:
    """The run once it stopped executing in ``rt`` (parked for a retry, failed or completed)."""

    async def stopped() -> bool:
        return not rt.runs_here(run_id)

    await until(stopped, f"run {run_id} stops executing here")
    return await rt.get_run(run_id)


async def claim(rt: Runtime, run_id: str) -> bool:
    """One claim round; whether it took ``run_id``."""
    return run_id in await rt.recover_once()


async def event_types(rt: Runtime, run_id: str) -> list[str]:
    return [e.type async for e in rt.events(run_id, follow=False)]


async def has_event(rt: Runtime, run_id: str, type: str) -> bool:
    return type in await event_types(rt, run_id)


async def test_retryable_failure_is_retried_with_backoff_then_succeeds(
    rt: Runtime, clock: FakeClock
) -> None:
    FAIL["work"] = [ConnectionError("reset by peer"), TimeoutError("slow upstream")]
    h = await rt.submit(WF, {})
    assert await claim(rt, h.run_id)
    run = await settle(rt, h.run_id)
    assert run.status is RunStatus.PLANNED and run.owner is None
    assert run.metadata["run_attempt"] == 2
    assert run.available_at == pytest.approx(clock.now() + 1000.0, abs=1e-3)  # initial_interval
    assert run.error["type"] == "ConnectionError"
    clock.advance(999.5)
    assert not await claim(rt, h.run_id)  # not due yet
    clock.advance(0.5)
    assert await claim(rt, h.run_id)
    run = await settle(rt, h.run_id)
    assert run.status is RunStatus.PLANNED and run.metadata["run_attempt"] == 3
    assert run.available_at == pytest.approx(clock.now() + 2000.0, abs=1e-3)  # * backoff_factor
    clock.advance(2000.0)
    assert await claim(rt, h.run_id)
    res = await rt.wait(h.run_id, timeout=60)
    assert res.status is RunStatus.COMPLETED
    assert res.state["out"] == "charged #1"  # the effect ran once, replayed twice
    assert res.error is None and not is_dead_lettered(await rt.get_run(h.run_id))
    assert CALLS == {"charge": 1, "work": 3}
    types = await event_types(rt, h.run_id)
    assert types.count("run_retry_scheduled") == 2
    assert types.count("effect_replayed") == 2
    scheduled = [
        e.data async for e in rt.events(h.run_id, follow=False) if e.type == "run_retry_scheduled"
    ]
    assert [(d["attempt"], d["delay"]) for d in scheduled] == [(1, 1000.0), (2, 2000.0)]
    hops = [(t.src, t.dst) for t in await rt.store.list_transitions(h.run_id)]
    assert hops.count((RunStatus.FAILED, RunStatus.PLANNED)) == 2


async def test_dead_letter_after_the_last_attempt_then_requeue_finishes_it(
    rt: Runtime, clock: FakeClock
) -> None:
    FAIL["work"] = [ToolTransientError(f"HTTP 503 #{i}", status=503) for i in range(3)]
    h = await rt.submit(WF, {})
    for _ in range(2):
        assert await claim(rt, h.run_id)
        run = await settle(rt, h.run_id)
        assert run.status is RunStatus.PLANNED
        clock.advance(5000.0)
    assert await claim(rt, h.run_id)
    run = await settle(rt, h.run_id)
    assert run.status is RunStatus.FAILED and is_dead_lettered(run)
    assert run.error["type"] == "ToolTransientError" and run.error["message"] == "HTTP 503 #2"
    assert run.metadata["dead_letter"]["attempts"] == 3
    assert "run_dead_lettered" in await event_types(rt, h.run_id)
    # a FAILED run that is not dead-lettered is not listed with them
    other = await rt.submit(PLAIN, {})
    FAIL["work"] = [ConnectionError("down")]
    assert await claim(rt, other.run_id)
    assert (await settle(rt, other.run_id)).status is RunStatus.FAILED
    assert [r.run_id for r in await rt.list_runs(dead_letter=True)] == [h.run_id]
    assert [r.run_id for r in await rt.list_runs(dead_letter=True, workflow="retry_plain")] == []

    # the dependency is fixed: a bulk requeue takes it back, and only once
    assert await rt.requeue(queue="billing") == []  # it waits in the default queue
    assert await rt.requeue(workflow="retry_plain") == []
    assert await rt.requeue() == [h.run_id]
    assert await rt.requeue() == []
    run = await rt.get_run(h.run_id)
    assert run.status is RunStatus.PLANNED and not is_dead_lettered(run)
    assert run.metadata["run_attempt"] == 1
    assert "run_requeued" in await event_types(rt, h.run_id)
    assert await claim(rt, h.run_id)  # due at once
    res = await rt.wait(h.run_id, timeout=60)
    assert res.status is RunStatus.COMPLETED and res.state["out"] == "charged #1"
    assert CALLS["charge"] == 2 and CALLS["work"] == 5  # one charge per run: h and other
    assert await rt.list_runs(dead_letter=True) == []


async def test_non_retryable_failure_fails_at_once_and_is_not_dead_lettered(
    rt: Runtime,
) -> None:
    FAIL["work"] = [ValueError("a bug"), ValueError("a bug")]
    h = await rt.submit(WF, {})
    assert await claim(rt, h.run_id)
    run = await settle(rt, h.run_id)
    assert run.status is RunStatus.FAILED and not is_dead_lettered(run)
    assert run.error["type"] == "ValueError" and "run_attempt" not in run.metadata
    types = await event_types(rt, h.run_id)
    assert "run_retry_scheduled" not in types and "run_dead_lettered" not in types
    assert await rt.list_runs(dead_letter=True) == []
    assert await rt.requeue() == []  # only dead-lettered ones by default
    # an operator's retry requeues any FAILED run
    FAIL["work"].clear()
    await rt.retry(h.run_id)
    assert await claim(rt, h.run_id)
    assert (await rt.wait(h.run_id, timeout=60)).status is RunStatus.COMPLETED
    with pytest.raises(RunStateError, match="only a FAILED run"):
        await rt.retry(h.run_id)


async def test_user_errors_are_never_retried_whatever_retry_on_says() -> None:
    assert not is_retryable(InvalidInputError("bad"))
    assert is_retryable(ToolTransientError("503")) and is_retryable(TimeoutError())
    assert not is_retryable(KeyError("x"))
    anything = RunRetry(retry_on=Exception)
    assert anything.retries(KeyError("x")) and not anything.retries(InvalidInputError("bad"))


async def test_finished_sibling_tasks_and_effects_are_not_repeated(
    rt: Runtime, clock: FakeClock
) -> None:
    FAIL["work"] = [ConnectionError("reset")]
    h = await rt.submit(SIBLINGS, {})
    assert await claim(rt, h.run_id)
    assert (await settle(rt, h.run_id)).status is RunStatus.PLANNED
    clock.advance(1000.0)
    assert await claim(rt, h.run_id)
    res = await rt.wait(h.run_id, timeout=60)
    assert res.status is RunStatus.COMPLETED and res.state["side"] == "done"
    assert CALLS == {"charge": 1, "work": 2, "side": 1}


async def test_per_run_max_attempts(rt: Runtime, clock: FakeClock) -> None:
    # one attempt only: the first retryable failure dead-letters the run
    FAIL["work"] = [ConnectionError("down")]
    h = await rt.submit(WF, {}, max_attempts=1)
    assert await claim(rt, h.run_id)
    run = await settle(rt, h.run_id)
    assert run.status is RunStatus.FAILED and is_dead_lettered(run)
    # a workflow without a RunRetry retries a run given max_attempts (default backoff)
    FAIL["work"] = [ConnectionError("down")]
    h = await rt.submit(PLAIN, {}, max_attempts=2)
    assert await claim(rt, h.run_id)
    # the default waits are short (this runtime may take the retry back by itself, in real
    # time): claim it on the moved clock unless it did
    await until(lambda: has_event(rt, h.run_id, "run_retry_scheduled"), "a retry is scheduled")
    clock.advance(RunRetry().max_interval)
    await rt.recover_once()
    assert (await rt.wait(h.run_id, timeout=60)).status is RunStatus.COMPLETED
    assert CALLS["work"] == 3
    with pytest.raises(Exception, match="max_attempts"):
        await rt.submit(WF, {}, max_attempts=0)


async def test_resume_runs_a_dead_lettered_run_here_with_fresh_attempts(rt: Runtime) -> None:
    FAIL["work"] = [ConnectionError("down")]
    h = await rt.submit(WF, {}, max_attempts=1)
    assert await claim(rt, h.run_id)
    assert is_dead_lettered(await settle(rt, h.run_id))
    res = await rt.resume(h.run_id)
    assert res.status is RunStatus.COMPLETED
    run = await rt.get_run(h.run_id)
    assert not is_dead_lettered(run) and run.metadata["run_attempt"] == 1
    assert await rt.list_runs(dead_letter=True) == []


async def test_a_runtime_that_claims_nothing_takes_its_retry_back_when_due() -> None:
    """``rt.run`` in a runtime with ``recover=False`` (``wf.invoke``, the CLI) does not hang on a
    run parked for a retry: the runtime executes it again itself once it is due."""
    fast = build("retry_fast", RunRetry(max_attempts=3, initial_interval=0.01, jitter=False))
    FAIL["work"] = [ConnectionError("reset"), TimeoutError("slow")]
    async with Runtime(MemoryStore(), workflows=[fast], recover=False) as rt:
        res = await asyncio.wait_for(rt.run(fast, {}), 60)  # without the take-back: forever
        assert res.status is RunStatus.COMPLETED and res.state["out"] == "charged #1"
        assert (await event_types(rt, res.run_id)).count("run_retry_scheduled") == 2
    assert CALLS == {"charge": 1, "work": 3}


async def test_a_second_runtime_takes_the_retry_when_due(opener: Opener, clock: FakeClock) -> None:
    FAIL["work"] = [ConnectionError("reset")]
    async with Runtime(opener(clock), workflows=[WF], recover=False, clock=clock) as rt1:
        h = await rt1.start(WF, {})  # executes in rt1
        run = await settle(rt1, h.run_id)
        assert run.status is RunStatus.PLANNED
    async with Runtime(
        opener(clock), workflows=[WF], recover=False, clock=clock, owner="other"
    ) as rt2:
        assert not await claim(rt2, h.run_id)
        clock.advance(1000.0)
        assert await claim(rt2, h.run_id)
        res = await rt2.wait(h.run_id, timeout=60)
        assert res.status is RunStatus.COMPLETED
        owners = {t.actor for t in await rt2.store.list_transitions(h.run_id)}
        assert any(rt2.worker_id in a for a in owners)
    assert CALLS == {"charge": 1, "work": 2}


def test_compile_refuses_a_node_policy_as_run_retry() -> None:
    from tether import RetryPolicy
    from tether.core.errors import GraphDefinitionError

    g = Graph(S, name="bad_retry")
    g.add_node("a", lambda s: None)
    g.add_edge(START, "a").add_edge("a", END)
    with pytest.raises(GraphDefinitionError, match="run_retry must be a RunRetry"):
        g.compile(run_retry=RetryPolicy())  # type: ignore[arg-type]


async def test_cli_lists_retries_and_requeues_the_dead_letter(tmp_path: Path) -> None:
    from tests.cli.conftest import run_cli
    from tether.store.sqlite import SqliteStore

    url = f"sqlite:///{tmp_path / 'cli.db'}"
    async with Runtime(SqliteStore(tmp_path / "cli.db"), workflows=[WF], recover=False) as rt:
        dead = []
        for _ in range(2):
            FAIL["work"] = [ConnectionError("down")]
            h = await rt.submit(WF, {}, max_attempts=1)  # out of attempts at the first failure
            assert await claim(rt, h.run_id)
            assert is_dead_lettered(await settle(rt, h.run_id))
            dead.append(h.run_id)
        listed = run_cli("runs", "list", "--dead-letter", "--json", store=url)
        assert listed.rc == 0, listed.err
        assert sorted(r["run_id"] for r in listed.json()) == sorted(dead)

        one = run_cli("runs", "retry", dead[0], "--json", store=url)
        assert one.rc == 0, one.err
        assert one.json()["was_dead_letter"] is True
        assert one.json()["run"]["status"] == "PLANNED"
        again = run_cli("runs", "retry", dead[0], store=url)
        assert again.rc == 2 and "only a FAILED run" in again.err

        bulk = run_cli("runs", "requeue", "--dead-letter", "--json", store=url)
        assert bulk.rc == 0, bulk.err
        assert bulk.json()["run_ids"] == [dead[1]]
        empty = run_cli("runs", "requeue", "--dead-letter", store=url)
        assert empty.rc == 0 and "requeued 0 dead-lettered runs" in empty.out
        assert run_cli("runs", "list", "--dead-letter", "--json", store=url).json() == []

        assert sorted(await rt.recover_once()) == sorted(dead)  # a worker takes both
        for run_id in dead:  # and finishes them from their last checkpoint
            assert (await rt.wait(run_id, timeout=60)).status is RunStatus.COMPLETED
    assert CALLS["charge"] == 2
