"""Conformance: queues, priorities, FIFO, delayed runs, parking and wake-up announcements."""

from __future__ import annotations

import asyncio

import pytest

from tether.core.errors import InvalidInputError, QueueFullError
from tether.store.protocol import RunStore
from tether.store.queue_limits import QueueControl, QueueLimit
from tether.store.types import Commit
from tether.store.wakeup import WakeSource
from tether.testing.clock import FakeClock
from tether.testing.store_helpers import T0, S, StoreFactory, StoreTestBase, create


async def _claim_ids(store: RunStore, owner: str = "w", **kw: object) -> list[str]:
    return [lease.run_id for lease in await store.claim_runs(owner, 30, **kw)]  # type: ignore[arg-type]


class QueueConformance(StoreTestBase):
    async def test_queue_fields_are_stored(self, store: RunStore) -> None:
        await create(store, "r1", status=S.PLANNED, queue="billing", priority=5, tenant="acme")
        await create(store, "r2", status=S.PLANNED, available_at=T0 + 60)
        r1, r2 = await store.get_run("r1"), await store.get_run("r2")
        assert (r1.queue, r1.priority, r1.tenant, r1.available_at) == ("billing", 5, "acme", 0.0)
        assert (r2.queue, r2.priority, r2.tenant, r2.available_at) == ("default", 0, None, T0 + 60)
        listed = {r.run_id: r for r in await store.list_runs()}
        assert (listed["r1"].queue, listed["r1"].priority, listed["r1"].tenant) == (
            "billing",
            5,
            "acme",
        )

    async def test_higher_priority_first_then_first_come(
        self, store: RunStore, clock: FakeClock
    ) -> None:
        for run_id, priority in [("a", 0), ("b", 5), ("c", 0), ("d", 5), ("e", -1), ("f", 9)]:
            await create(store, run_id, status=S.PLANNED, priority=priority)
            clock.advance(1)
        assert await _claim_ids(store, limit=3) == ["f", "b", "d"]
        assert await _claim_ids(store, limit=10) == ["a", "c", "e"]

    async def test_orphans_and_released_runs_before_new_ones(
        self, store: RunStore, clock: FakeClock
    ) -> None:
        await create(store, "new", status=S.PLANNED, priority=100)
        clock.advance(1)
        await create(store, "orphan", owner="dead", lease_token=1, lease_expires_at=T0 + 5)
        clock.advance(1)
        await create(store, "released", status=S.EXECUTING, priority=-5)
        lease = await store.acquire_lease("released", "w0", 10)
        assert lease is not None
        await store.release_lease("released", lease.token)
        clock.set(T0 + 5)  # the orphan's lease expires
        assert await _claim_ids(store) == ["orphan", "released", "new"]

    async def test_a_claim_is_filled_in_claim_order_across_every_kind_of_run(
        self, store: RunStore, clock: FakeClock
    ) -> None:
        """Orphans, then released runs, then new ones, each by priority then age, read from
        indexes in that order (``store.claim_order``): a limit is filled from each kind in
        turn, and what is not available yet, of another queue or excluded waits."""
        for run_id, priority in [("new-old", 0), ("new-hi", 7), ("new-young", 0)]:
            await create(store, run_id, status=S.PLANNED, priority=priority)
            clock.advance(1)
        await create(store, "new-later", status=S.PLANNED, priority=99, available_at=T0 + 20)
        await create(store, "new-mail", status=S.PLANNED, priority=99, queue="mail")
        await create(store, "new-skipped", status=S.PLANNED, priority=99)
        for run_id, priority in [("released-lo", -1), ("released-hi", 3), ("released-lo2", -1)]:
            await create(store, run_id, status=S.EXECUTING, priority=priority)
            lease = await store.acquire_lease(run_id, "w0", 10)
            assert lease is not None
            await store.release_lease(run_id, lease.token)
            clock.advance(1)
        for run_id, priority in [("orphan-lo", 0), ("orphan-hi", 2)]:
            expired = clock.now()  # the lease of an owner that is gone
            await create(
                store,
                run_id,
                owner="gone",
                lease_token=1,
                lease_expires_at=expired,
                priority=priority,
            )
            clock.advance(1)
        await create(store, "held", owner="alive", lease_token=1, lease_expires_at=T0 + 600)
        first = await _claim_ids(store, limit=4, queues=["default"], exclude=["new-skipped"])
        assert first == ["orphan-hi", "orphan-lo", "released-hi", "released-lo"], first
        rest = await _claim_ids(store, limit=10, queues=["default"], exclude=["new-skipped"])
        assert rest == ["released-lo2", "new-hi", "new-old", "new-young"]
        assert await _claim_ids(store, queues=["default"], exclude=["new-skipped"]) == []
        clock.set(T0 + 20)  # the leases just taken (30 s) still hold
        assert await _claim_ids(store, limit=10) == ["new-later", "new-mail", "new-skipped"]

    async def test_claims_serve_the_queues_asked_for(self, store: RunStore) -> None:
        await create(store, "d1", status=S.PLANNED)
        await create(store, "b1", status=S.PLANNED, queue="billing")
        await create(store, "m1", status=S.PLANNED, queue="mail")
        assert await _claim_ids(store, queues=[]) == []
        assert await _claim_ids(store, queues=["billing", "nope"]) == ["b1"]
        assert await _claim_ids(store, queues=["mail", "default"]) == ["d1", "m1"]
        assert await _claim_ids(store) == []

    async def test_a_delayed_run_waits_for_its_time(
        self, store: RunStore, clock: FakeClock
    ) -> None:
        await create(store, "later", status=S.PLANNED, available_at=T0 + 10, priority=9)
        await create(store, "now", status=S.PLANNED)
        assert await _claim_ids(store) == ["now"]
        clock.set(T0 + 9.5)
        assert await _claim_ids(store) == []
        clock.set(T0 + 10)  # available_at is inclusive
        assert await _claim_ids(store) == ["later"]

    async def test_commit_parks_a_run_until_a_time(
        self, store: RunStore, store_factory: StoreFactory, clock: FakeClock
    ) -> None:
        await create(store, "r1", status=S.PLANNED)
        (lease,) = await store.claim_runs("w1", 30)
        park = Commit(available_at=T0 + 100, release_lease=True)
        run = await store.commit("r1", lease.token, park)
        assert (run.owner, run.available_at, run.lease_token) == (None, T0 + 100, lease.token)
        assert (await store.get_run("r1")).available_at == T0 + 100
        other = await store_factory()
        assert await _claim_ids(other, "w2") == []
        clock.set(T0 + 100)
        (again,) = await other.claim_runs("w2", 30)
        assert (again.run_id, again.token) == ("r1", lease.token + 1)
        # a step commit (Commit.base) reads back the new available_at too
        run = await other.get_run("r1")
        moved = await other.commit("r1", again.token, Commit(available_at=T0 + 1, base=run))
        assert moved.available_at == T0 + 1
        assert (await other.get_run("r1")).available_at == T0 + 1

    async def test_claimable_runs_are_announced(
        self, store: RunStore, store_factory: StoreFactory
    ) -> None:
        """Announcements reach a subscriber of another store on the same database in this
        process at once (PostgreSQL may repeat one later through LISTEN: compare sets)."""
        assert isinstance(store, WakeSource)
        other = await store_factory()  # another store on the same database, in this process
        assert isinstance(other, WakeSource)
        heard: list[tuple[str, float]] = []
        stop = store.subscribe_wakeups(lambda q, at: heard.append((q, at)))
        await create(other, "sub", status=S.PLANNED, queue="billing")
        assert set(heard) == {("billing", 0.0)}
        await create(other, "mine", owner="w1", lease_token=1, lease_expires_at=T0 + 30)
        assert set(heard) == {("billing", 0.0)}  # owned: nothing to claim
        await other.release_lease("mine", 1)
        assert set(heard) == {("billing", 0.0), ("default", 0.0)}
        lease = await other.acquire_lease("mine", "w1", 30)
        assert lease is not None
        await other.commit("mine", lease.token, Commit(available_at=T0 + 5, release_lease=True))
        expected = {("billing", 0.0), ("default", 0.0), ("default", T0 + 5)}
        assert set(heard) == expected
        lease = await other.acquire_lease("mine", "w1", 30)
        assert lease is not None
        await other.commit("mine", lease.token, Commit(available_at=T0 + 7))  # still owned
        done = Commit(
            status=S.CANCELLED,
            transitions=[(S.EXECUTING, S.CANCELLED, "w1", "")],
            release_lease=True,
        )
        await other.commit("mine", lease.token, done)  # finished: nothing to claim
        assert set(heard) == expected
        stop()
        n = len(heard)
        await create(other, "after", status=S.PLANNED, queue="late")
        assert ("late", 0.0) not in heard[n:]


class QueueLimitConformance(StoreTestBase):
    async def test_limits_are_set_listed_and_removed(self, store: RunStore) -> None:
        assert isinstance(store, QueueControl)
        assert await store.queue_limits() == []
        await store.set_queue_limit("tenant", "acme", max_running=2)
        await store.set_queue_limit("queue", "billing", max_running=4, max_depth=100)
        await store.set_queue_limit("queue", "billing", max_depth=50)  # replaces the whole limit
        assert await store.queue_limits() == [
            QueueLimit("queue", "billing", None, 50),
            QueueLimit("tenant", "acme", 2, None),
        ]
        await store.set_queue_limit("tenant", "acme")
        assert [lim.key for lim in await store.queue_limits()] == ["billing"]
        with pytest.raises(InvalidInputError, match="max_running only"):
            await store.set_queue_limit("tenant", "acme", max_depth=1)
        with pytest.raises(InvalidInputError, match="kind"):
            await store.set_queue_limit("planet", "mars", max_running=1)

    async def test_claims_respect_running_limits(self, store: RunStore, clock: FakeClock) -> None:
        assert isinstance(store, QueueControl)
        for i in range(4):
            await create(store, f"a{i}", status=S.PLANNED, tenant="acme", priority=9)
            await create(store, f"b{i}", status=S.PLANNED, tenant="bob", queue="mail")
            clock.advance(1)
        await store.set_queue_limit("tenant", "acme", max_running=2)
        await store.set_queue_limit("queue", "mail", max_running=1)
        first = await _claim_ids(store, "w1", limit=10)
        assert first == ["a0", "a1", "b0"]  # acme's third and mail's second wait
        assert await _claim_ids(store, "w2", limit=10) == []  # every limit is full
        lease = await store.acquire_lease("a0", "w1", 30)
        assert lease is not None
        done = Commit(
            status=S.CANCELLED,
            transitions=[(S.PLANNED, S.CANCELLED, "w1", "")],
            release_lease=True,
        )
        await store.commit("a0", lease.token, done)  # one of acme's runs ends: room for one
        assert await _claim_ids(store, "w2", limit=10) == ["a2"]
        clock.advance(30)  # every lease expires: nothing runs, the limits have room again
        assert await _claim_ids(store, "w3", limit=2) == ["a1", "a2"]  # orphans first
        await store.set_queue_limit("queue", "mail")
        await store.set_queue_limit("tenant", "acme")
        assert sorted(await _claim_ids(store, "w3", limit=10)) == ["a3", "b0", "b1", "b2", "b3"]

    async def test_concurrent_claimers_never_exceed_a_limit(
        self, store: RunStore, store_factory: StoreFactory, clock: FakeClock
    ) -> None:
        assert isinstance(store, QueueControl)
        for i in range(24):
            await create(store, f"r{i:02}", status=S.PLANNED, workflow="wf", tenant="acme")
        await store.set_queue_limit("workflow", "wf", max_running=3)
        peers = [store, *[await store_factory() for _ in range(7)]]
        for _round in range(10):  # each round: every lease expired, eight claimers at once
            got = await asyncio.gather(
                *(_claim_ids(p, f"w{i}", limit=3) for i, p in enumerate(peers))
            )
            claimed = [r for ids in got for r in ids]
            assert len(claimed) == 3 and len(set(claimed)) == 3, got
            clock.advance(31)

    async def test_queue_stats_and_depth(self, store: RunStore, clock: FakeClock) -> None:
        assert isinstance(store, QueueControl)
        await create(store, "w1", status=S.PLANNED, queue="q")
        clock.advance(5)
        await create(store, "w2", status=S.PLANNED, queue="q")
        await create(store, "d1", status=S.PLANNED, queue="q", available_at=T0 + 100)
        await create(store, "r1", queue="q", owner="w", lease_token=1, lease_expires_at=T0 + 60)
        await create(store, "x1", status=S.COMPLETED, queue="q")  # finished: not counted
        await create(store, "o1", status=S.PLANNED)
        clock.advance(5)
        stats = {s.queue: s for s in await store.queue_stats()}
        assert sorted(stats) == ["default", "q"]
        q = stats["q"]
        assert (q.waiting, q.delayed, q.running, q.depth) == (2, 1, 1, 4)
        assert q.oldest_waiting_at == T0 and q.oldest_age(clock.now()) == 10
        await store.set_queue_limit("queue", "q", max_depth=5)
        await store.check_queue_room("q")
        await store.set_queue_limit("queue", "q", max_depth=4)
        with pytest.raises(QueueFullError) as caught:
            await store.check_queue_room("q")
        assert (caught.value.depth, caught.value.limit) == (4, 4)
        await store.check_queue_room("default")  # no limit there
