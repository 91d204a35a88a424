"""Workers on hosts whose clocks disagree share the PostgreSQL server's time (``ServerClock``)."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypedDict

import pytest

from tether import END, START, Graph, Runtime
from tether.store.server_clock import REALIGN_EVERY, ServerClock
from tether.testing import FakeClock
from tether.worker import Worker

if TYPE_CHECKING:
    from tether.store.postgres import PostgresStore


class Steps(TypedDict):
    n: int


def gated_workflow(gate: asyncio.Event, name: str = "gated") -> Any:
    async def hold(state: Steps) -> dict[str, int]:
        await gate.wait()
        return {"n": state["n"] + 1}

    g = Graph(Steps, name=name)
    g.add_node("hold", hold)
    g.add_edge(START, "hold")
    g.add_edge("hold", END)
    return g.compile()


def host_clock(skew: float) -> Callable[[], float]:
    """The wall clock of a host whose clock is ``skew`` seconds off."""
    return lambda: time.time() + skew


# -- the clock itself ----------------------------------------------------------------------------
def test_the_offset_comes_from_the_shortest_round_trip() -> None:
    clock = ServerClock(local=lambda: 1000.0, monotonic=lambda: 5.0)
    assert clock.due() and clock.round_trip is None
    # (sent, server, received): 2 s, 0.2 s and 1 s round trips; the 0.2 s one decides
    clock.align([(100.0, 160.0, 102.0), (200.0, 230.05, 200.2), (300.0, 400.0, 301.0)])
    assert clock.offset == pytest.approx(29.95)
    assert clock.round_trip == pytest.approx(0.2)
    assert clock.now() == pytest.approx(1029.95)
    assert not clock.due()


def test_samples_that_make_no_sense_are_skipped() -> None:
    clock = ServerClock(local=lambda: 0.0, monotonic=lambda: 0.0)
    clock.align([(10.0, 50.0, 9.0), (0.0, math.nan, 1.0), (math.inf, 1.0, math.inf)])
    assert clock.offset == 0.0 and clock.round_trip is None and clock.due()
    clock.align([(10.0, 50.0, 9.0), (10.0, 15.5, 11.0)])  # the local clock stepped back in one
    assert clock.offset == pytest.approx(5.0)


def test_it_is_measured_again_once_the_interval_passed() -> None:
    mono = [0.0]
    clock = ServerClock(local=lambda: mono[0], monotonic=lambda: mono[0])
    clock.align([(0.0, 1.0, 0.0)])
    mono[0] += REALIGN_EVERY - 1
    assert not clock.due()
    mono[0] += 1
    assert clock.due()


def test_between_measurements_time_is_counted_on_the_monotonic_clock() -> None:
    """The local wall clock stepping (an hour ahead, then back) leaves the server's time as it
    was and makes a measurement due at once; a measurement that fails holds the next one off
    for the interval, step or no step (an outage is not measured before every lease)."""
    wall, mono = [1000.0], [0.0]
    clock = ServerClock(local=lambda: wall[0], monotonic=lambda: mono[0])
    clock.align([(1000.0, 1030.0, 1000.0)])  # the server is 30 s ahead
    wall[0] += 10
    mono[0] += 10
    assert clock.now() == pytest.approx(1040.0) and not clock.due() and not clock.stepped()
    wall[0] += 3600  # stepped ahead
    assert clock.now() == pytest.approx(1040.0) and clock.stepped() and clock.due()
    clock.postpone()  # the measurement failed
    assert not clock.due() and clock.now() == pytest.approx(1040.0)
    mono[0] += REALIGN_EVERY
    wall[0] += REALIGN_EVERY
    assert clock.due() and clock.now() == pytest.approx(1100.0)
    clock.align([(wall[0], 1100.0, wall[0])])
    assert clock.offset == pytest.approx(-3570.0) and not clock.due()
    wall[0] -= 7200  # stepped back
    assert clock.now() == pytest.approx(1100.0) and clock.due()


# -- PostgreSQL ------------------------------------------------------------------------------------
def pg_store(dsn: str, schema: str, skew: float = 0.0, **kw: Any) -> PostgresStore:
    from tether.store.postgres import PostgresStore

    if skew:
        kw["clock"] = ServerClock(local=host_clock(skew))
    return PostgresStore(dsn, schema=schema, **kw)


@pytest.mark.postgres
async def test_a_postgres_store_tells_the_servers_time(
    pg_dsn: str, pg_schema: str, caplog: pytest.LogCaptureFixture
) -> None:
    from tether.store.postgres import PostgresStore

    plain = PostgresStore(pg_dsn, schema=pg_schema)
    ahead = pg_store(pg_dsn, pg_schema, skew=20.0)
    assert isinstance(plain.clock, ServerClock)
    try:
        await plain.setup()
        await ahead.setup()
        # the server runs on this host: its time is this host's, whatever the store's host says
        for store in (plain, ahead):
            clock = store.clock
            assert clock.round_trip is not None
            assert abs(clock.now() - time.time()) < 5.0, clock
        assert ahead.clock.offset == pytest.approx(-20.0, abs=5.0)
        warned = [r.getMessage() for r in caplog.records if "NTP" in r.getMessage()]
        assert len(warned) == 1 and "20" in warned[0] and "ahead of" in warned[0], warned
    finally:
        await plain.close()
        await ahead.close()


@pytest.mark.postgres
async def test_a_clock_passed_in_is_left_as_it_is(pg_dsn: str, pg_schema: str) -> None:
    from tether.store.postgres import PostgresStore

    fake = FakeClock(start=1_000.0)
    store = PostgresStore(pg_dsn, schema=pg_schema, clock=fake)
    async with Runtime(store, recover=False) as rt:
        assert store.clock is fake and not isinstance(rt.clock, ServerClock)
        assert fake.now() == 1_000.0  # not moved by any measurement
    own = FakeClock(start=5.0)
    async with Runtime(PostgresStore(pg_dsn, schema=pg_schema), recover=False, clock=own) as rt:
        assert rt.clock is own  # a runtime given a clock keeps it


@pytest.mark.postgres
async def test_a_runtime_and_a_worker_take_the_stores_server_clock(
    pg_dsn: str, pg_schema: str
) -> None:
    url = f"{pg_dsn}?schema={pg_schema}"
    async with Runtime(url, recover=False) as rt:
        assert isinstance(rt.clock, ServerClock) and rt.clock is rt.store.clock
        assert rt.clock.round_trip is not None
    worker = Worker(url, [], concurrency=1)
    assert worker.clock is worker.runtime.clock is worker.store.clock


@pytest.mark.postgres
@pytest.mark.parametrize("skew", [20.0, -20.0])
async def test_a_host_whose_clock_is_off_takes_no_live_run(
    pg_dsn: str, pg_schema: str, skew: float
) -> None:
    """A runtime on a host 20 s ahead used to see every live lease as expired and take the
    run over from the healthy worker executing it (whose wait() then raised LeaseLostError);
    one 20 s behind wrote leases that already looked expired to everyone else."""
    gate = asyncio.Event()
    wf = gated_workflow(gate)
    skewed = Runtime(pg_store(pg_dsn, pg_schema, skew=skew), workflows=[wf], recover=False)
    normal = Runtime(pg_store(pg_dsn, pg_schema), workflows=[wf], recover=False)
    async with skewed, normal:
        handles = []
        # each host executes a run; the other host tries to claim it
        for runner, claimer in ((normal, skewed), (skewed, normal)):
            handle = await runner.start(wf, {"n": 0})
            before = await claimer.store.get_run(handle.run_id)
            assert before.owner == runner.owner
            taken = await claimer.store.claim_runs("claimer", 15.0, limit=10)
            assert taken == [], f"a live run was taken over: {taken}"
            handles.append((handle, before.lease_token))
        gate.set()
        for handle, token in handles:
            result = await handle.wait()
            assert result.status.value == "COMPLETED" and result.state["n"] == 1
            assert (await normal.store.get_run(handle.run_id)).lease_token == token


@pytest.mark.postgres
async def test_a_clock_that_steps_keeps_the_servers_time_and_is_measured_again(
    pg_dsn: str, pg_schema: str
) -> None:
    """The host's clock jumps an hour ahead (a VM restored from a snapshot): the store went on
    reading the stepped clock plus the old offset until the next measurement, a minute later;
    now the time since the last measurement is counted on the monotonic clock, and the step
    itself makes the next lease operation measure again."""
    skew = [0.0]
    clock = ServerClock(local=lambda: time.time() + skew[0])
    store = pg_store(pg_dsn, pg_schema)
    store.clock = clock
    async with Runtime(store, recover=False) as rt:
        assert abs(clock.now() - time.time()) < 5.0 and not clock.due()
        skew[0] = 3600.0
        assert abs(clock.now() - time.time()) < 5.0  # still the server's time
        assert clock.due()  # the step is noticed ...
        await rt.store.claim_runs("probe", 15.0, limit=1)
        assert clock.offset == pytest.approx(-3600.0, abs=5.0)  # ... and measured
        assert abs(clock.now() - time.time()) < 5.0 and not clock.due()


@pytest.mark.postgres
@pytest.mark.parametrize("step", [3600.0, -3600.0])
async def test_a_host_whose_clock_steps_while_it_runs_takes_no_live_run(
    pg_dsn: str, pg_schema: str, step: float
) -> None:
    """Docs: the workers' clocks "may even step while they run". A host whose clock jumped an
    hour ahead after its store measured the offset saw every live lease as expired and took
    the healthy worker's run over; one whose clock jumped back wrote leases that had expired an
    hour before, and the healthy worker took its live run over."""
    gate = asyncio.Event()
    wf = gated_workflow(gate)
    skew = [0.0]
    stepping = pg_store(pg_dsn, pg_schema)
    stepping.clock = ServerClock(local=lambda: time.time() + skew[0])
    host = Runtime(stepping, workflows=[wf], recover=False)
    normal = Runtime(pg_store(pg_dsn, pg_schema), workflows=[wf], recover=False)
    async with host, normal:
        skew[0] = step  # measured before, stepped now
        handles = []
        for runner, claimer in ((normal, host), (host, normal)):
            handle = await runner.start(wf, {"n": 0})
            before = await claimer.store.get_run(handle.run_id)
            assert before.owner == runner.owner
            taken = await claimer.store.claim_runs("claimer", 15.0, limit=10)
            assert taken == [], f"a live run was taken over: {taken}"
            handles.append((handle, before.lease_token))
        gate.set()
        for handle, token in handles:
            result = await handle.wait()
            assert result.status.value == "COMPLETED" and result.state["n"] == 1
            assert (await normal.store.get_run(handle.run_id)).lease_token == token


@pytest.mark.postgres
async def test_a_worker_on_a_host_behind_does_not_look_dead(pg_dsn: str, pg_schema: str) -> None:
    """Worker heartbeats are timestamps too: a host 30 s behind wrote ones that the other
    workers' dead-owner scan found stale at once, and took its runs away."""
    from tether.store.workers import WorkerRecord, stale_owners

    behind, normal = pg_store(pg_dsn, pg_schema, skew=-30.0), pg_store(pg_dsn, pg_schema)
    await behind.setup()
    await normal.setup()
    try:
        started = behind.clock.now()
        record = WorkerRecord("w-behind", "w-behind", "elsewhere", 1, started, heartbeat_every=5.0)
        await behind.register_worker(record)
        assert await behind.heartbeat_worker("w-behind", 0)
        rows = await normal.list_workers()
        assert stale_owners(rows, normal.clock.now(), 10.0) == []
    finally:
        await behind.close()
        await normal.close()


async def test_a_failed_measurement_is_not_tried_before_every_lease() -> None:
    """While the server is unreachable each measurement waits out the store's retries: one
    failure keeps the offset and waits for the next interval."""
    pytest.importorskip("psycopg")
    from tether.store.postgres import PostgresStore

    mono = [0.0]
    clock = ServerClock(local=time.time, monotonic=lambda: mono[0])
    store = PostgresStore("postgresql://nowhere.invalid/x", clock=clock)
    tries = []

    async def unreachable() -> None:
        tries.append(1)
        raise OSError("connection refused")

    store._align_clock = unreachable  # type: ignore[method-assign]
    for _ in range(3):
        await store._before_leasing()
    assert len(tries) == 1 and clock.offset == 0.0
    mono[0] += REALIGN_EVERY
    await store._before_leasing()
    assert len(tries) == 2
