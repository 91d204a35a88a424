"""How a runtime claims and keeps runs: claims sized to its free slots, orphans first, never its
own running run; all leases renewed in one batch; a lost lease is logged and surfaces on wait().

Time is a FakeClock, so lease expiry happens exactly when a test says so; the heartbeat of these
in-memory stores runs on the event loop and never ticks during a test (lease_ttl is long)."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Mapping
from typing import Any, TypedDict

import pytest

from tether import END, START, Graph, LeaseLostError, RunContext, RunStatus, Runtime
from tether.core.errors import ConfigurationError
from tether.store.memory import MemoryStore
from tether.testing import FakeClock

TTL = 60.0


class S(TypedDict, total=False):
    n: int
    by: str


class CountingStore(MemoryStore):
    """Counts renewal calls: the heartbeat must renew in batches, never run by run."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(clock)
        self.batches: list[dict[str, int]] = []
        self.single_renewals = 0

    async def renew_leases(self, owner: str, leases: Mapping[str, int], ttl: float) -> set[str]:
        self.batches.append(dict(leases))
        return await super().renew_leases(owner, leases, ttl)

    async def renew_lease(self, run_id: str, owner: str, token: int, ttl: float) -> Any:
        self.single_renewals += 1
        return await super().renew_lease(run_id, owner, token, ttl)


def _workflow(gates: dict[str, asyncio.Event], entered: list[tuple[str, str]]) -> Any:
    """One node that waits on its runtime's gate (``gates[owner]``) before it writes."""

    async def work(state: S, ctx: RunContext) -> dict[str, Any]:
        owner = ctx._host.worker_id
        entered.append((owner, ctx.run_id))
        await gates[owner].wait()
        return {"n": state.get("n", 0) + 1, "by": owner}

    g = Graph(S, name="claims")
    g.add_node("work", work)
    g.add_edge(START, "work").add_edge("work", END)
    return g.compile()


async def _until(cond: Any) -> None:
    async with asyncio.timeout(30):  # a hang guard, not a bound
        while not cond():
            await asyncio.sleep(0.005)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(clock: FakeClock) -> CountingStore:
    return CountingStore(clock)


def _runtime(store: MemoryStore, clock: FakeClock, owner: str, wf: Any, **kw: Any) -> Runtime:
    return Runtime(
        store, owner=owner, workflows=[wf], lease_ttl=TTL, recover=False, clock=clock, **kw
    )


async def test_a_claim_takes_no_more_runs_than_free_slots(
    store: CountingStore, clock: FakeClock
) -> None:
    gates = {"A": asyncio.Event()}
    entered: list[tuple[str, str]] = []
    wf = _workflow(gates, entered)
    async with _runtime(store, clock, "A", wf, max_concurrent_runs=3) as rt:
        ids = [(await rt.submit(wf, {"n": i})).run_id for i in range(10)]
        assert len(await rt.recover_once(limit=16)) == 3
        assert await rt.recover_once(limit=16) == []  # every slot busy: no claim at all
        owned = [r for r in await rt.list_runs(limit=20) if r.owner == rt.owner]
        assert len(owned) == 3
        await _until(lambda: len(entered) == 3)
        gates["A"].set()
        for run_id in {r.run_id for r in owned}:
            assert (await rt.wait(run_id, timeout=30)).status is RunStatus.COMPLETED
        assert len(await rt.recover_once(limit=2)) == 2  # limit below the free slots: limit
        assert len(await rt.recover_once(limit=16)) == 1  # the last free slot
        assert len(ids) == 10


async def test_an_orphan_is_claimed_before_a_never_started_run(
    store: CountingStore, clock: FakeClock
) -> None:
    gates = {"A": asyncio.Event(), "B": asyncio.Event()}
    entered: list[tuple[str, str]] = []
    wf = _workflow(gates, entered)
    gates["B"].set()
    async with _runtime(store, clock, "B", wf, max_concurrent_runs=1) as b:
        queued = await b.submit(wf, {"n": 0})  # enqueued first: the oldest
        clock.advance(1)
        async with _runtime(store, clock, "A", wf) as a:
            orphan = await a.start(wf, {"n": 10})
            await _until(lambda: entered)
            a._background[0].cancel()  # A stalls: no renewals
            clock.advance(TTL)  # ... and its lease expires
            assert await b.recover_once() == [orphan.run_id]
            res = await b.wait(orphan.run_id, timeout=30)
            assert res.state == {"n": 11, "by": "B"}
            assert await b.recover_once() == [queued.run_id]
            gates["A"].set()


async def test_a_runtime_never_claims_its_own_running_run(
    store: CountingStore, clock: FakeClock
) -> None:
    gates = {"A": asyncio.Event()}
    entered: list[tuple[str, str]] = []
    wf = _workflow(gates, entered)
    async with _runtime(store, clock, "A", wf) as rt:
        handle = await rt.start(wf, {"n": 0})
        await _until(lambda: entered)
        clock.advance(TTL)  # its lease expired under it (no renewal ran): still its run
        assert await rt.recover_once() == []
        assert (await rt.get_run(handle.run_id)).lease_token == 1
        gates["A"].set()
        res = await handle.wait()
        assert (res.status, res.state, res.record.lease_token) == (
            RunStatus.COMPLETED,
            {"n": 1, "by": "A"},
            1,
        )


async def test_all_leases_are_renewed_in_one_batch(store: CountingStore, clock: FakeClock) -> None:
    gates = {"A": asyncio.Event()}
    entered: list[tuple[str, str]] = []
    wf = _workflow(gates, entered)
    async with _runtime(store, clock, "A", wf) as rt:
        handles = [await rt.start(wf, {"n": i}) for i in range(5)]
        await _until(lambda: len(entered) == 5)
        clock.advance(10)
        store.batches.clear()
        await rt._renew_now()
        assert store.batches == [{h.run_id: 1 for h in handles}]
        assert store.single_renewals == 0
        for h in handles:
            assert (await rt.get_run(h.run_id)).lease_expires_at == clock.now() + TTL
        gates["A"].set()
        for h in handles:
            await h.wait()


async def test_a_lost_lease_is_logged_and_raised_on_wait(
    store: CountingStore, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    gates = {"A": asyncio.Event(), "B": asyncio.Event()}
    entered: list[tuple[str, str]] = []
    wf = _workflow(gates, entered)
    async with _runtime(store, clock, "A", wf) as a, _runtime(store, clock, "B", wf) as b:
        handle = await a.start(wf, {"n": 0})
        await _until(lambda: entered)
        waiter = asyncio.create_task(a.wait(handle.run_id))
        clock.advance(TTL)  # A's renewals did not land in time (a store outage, say)
        assert await b.recover_once() == [handle.run_id]
        await _until(lambda: len(entered) == 2)  # B executes it now
        with caplog.at_level(logging.WARNING, logger="tether.runtime"):
            await a._renew_now()  # A's next renewal finds the lease gone
            with pytest.raises(LeaseLostError) as info:
                await asyncio.wait_for(waiter, 30)
        err = info.value
        assert (err.run_id, err.token, err.holder, err.holder_token) == (
            handle.run_id,
            1,
            b.owner,
            2,
        )
        assert f"worker {b.owner} holds it now" in str(err) and "Call wait() again" in str(err)
        lines = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert lines == [  # B says it took the run over; A says it lost it
            f"run {handle.run_id}: lease taken over from {a.owner} by {b.owner} (the old "
            "owner's lease expired; token 2)",
            f"run {handle.run_id}: lease lost to {b.owner} (token 2; ours was 1); stopped executing it here",
        ]
        assert handle.run_id not in a._tasks and handle.run_id not in a._leases
        gates["B"].set()
        again = await a.wait(handle.run_id, timeout=30)  # a new wait follows it to the end
        assert (again.status, again.state) == (RunStatus.COMPLETED, {"n": 1, "by": "B"})
        gates["A"].set()


async def test_wait_returns_the_result_when_the_lost_run_already_finished(
    store: CountingStore, clock: FakeClock
) -> None:
    gates = {"A": asyncio.Event(), "B": asyncio.Event()}
    entered: list[tuple[str, str]] = []
    wf = _workflow(gates, entered)
    gates["B"].set()
    async with _runtime(store, clock, "A", wf) as a, _runtime(store, clock, "B", wf) as b:
        handle = await a.start(wf, {"n": 0})
        await _until(lambda: entered)
        waiter = asyncio.create_task(a.wait(handle.run_id))
        clock.advance(TTL)
        assert await b.recover_once() == [handle.run_id]
        assert (await b.wait(handle.run_id, timeout=30)).status is RunStatus.COMPLETED
        gates["A"].set()  # A wakes, its commit is fenced off; the run finished elsewhere
        res = await asyncio.wait_for(waiter, 30)
        assert (res.status, res.state) == (RunStatus.COMPLETED, {"n": 1, "by": "B"})


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "8"])
def test_max_concurrent_runs_is_checked(bad: Any) -> None:
    with pytest.raises(ConfigurationError, match="max_concurrent_runs"):
        Runtime(max_concurrent_runs=bad)


class FlakyRenewer:
    """A LeaseRenewer whose database fails once, then reports ``lost``."""

    def __init__(self, lost: set[str]) -> None:
        self.lost = lost
        self.calls: list[dict[str, int]] = []
        self.closed = False

    def renew_leases(self, owner: str, leases: Mapping[str, int], ttl: float) -> set[str]:
        self.calls.append(dict(leases))
        if len(self.calls) == 1:
            raise ConnectionError("server closed the connection unexpectedly")
        return self.lost & set(leases)

    def close(self) -> None:
        self.closed = True


def test_the_keeper_reports_each_lost_lease_once_and_survives_errors(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from tether.graph.heartbeat import LeaseKeeper

    leases = {"a": 1, "b": 1}
    reports: list[dict[str, int]] = []
    renewer = FlakyRenewer({"b"})
    keeper = LeaseKeeper(renewer, "A", 3.0, leases, reports.append)
    with caplog.at_level(logging.WARNING, logger="tether.runtime"):
        keeper.renew_once()  # the store is down: logged, nothing reported, retried next tick
    assert [r.getMessage() for r in caplog.records] == [
        "renewing 2 lease(s) of A failed: server closed the connection unexpectedly"
    ]
    assert (keeper.renewals, reports) == (0, [])
    keeper.renew_once()
    keeper.renew_once()  # "b" is not renewed (nor reported) again while the runtime holds it
    assert reports == [{"b": 1}]
    assert renewer.calls[1:] == [{"a": 1, "b": 1}, {"a": 1}]
    leases["b"] = 2  # the runtime took "b" again, under a new token: renewed again
    keeper.renew_once()
    assert renewer.calls[-1] == {"a": 1, "b": 2} and keeper.renewals == 3
    keeper.stop()
    keeper._run()  # stopped: the thread's loop exits at once and closes its connection
    assert renewer.closed


def test_the_keeper_thread_renews_on_wake_and_ends_on_stop() -> None:
    from tether.graph.heartbeat import LeaseKeeper

    renewed = threading.Event()

    class Renewer:
        closed = False

        def renew_leases(self, owner: str, leases: Mapping[str, int], ttl: float) -> set[str]:
            renewed.set()
            return set()

        def close(self) -> None:
            self.closed = True

    exits: list[str] = []
    renewer = Renewer()
    keeper = LeaseKeeper(
        renewer, "A", 3600.0, {"a": 1}, lambda lost: None, lambda: exits.append("x")
    )
    keeper.start()
    keeper.wake()  # renew now, not in ttl / 3 = 20 minutes
    assert renewed.wait(60), "the keeper's thread never renewed"
    assert not keeper.join(0)  # still running
    keeper.stop()
    assert keeper.join(60), "the keeper's thread did not end after stop()"
    assert renewer.closed and exits == ["x"] and keeper.renewals >= 1
