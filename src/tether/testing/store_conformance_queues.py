"""Conformance: queues, priorities, FIFO, delayed runs, parking and wake-up announcements."""

from __future__ import annotations

from tether.store.protocol import RunStore
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
