"""Conformance: the worker registry (``tether.store.workers``): register, heartbeat, stop,
list and clean up worker rows, shared by every process on one store."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tether.store.protocol import RunStore
from tether.store.workers import WorkerRecord, WorkerRegistry, stale_owners
from tether.testing.clock import FakeClock
from tether.testing.store_helpers import StoreFactory, StoreTestBase

if TYPE_CHECKING:  # every backend satisfies WorkerRegistry statically too (checked by mypy)
    from tether.store.memory import MemoryStore
    from tether.store.postgres import PostgresStore
    from tether.store.sqlite import SqliteStore

    _BACKENDS: tuple[type[WorkerRegistry], ...] = (MemoryStore, SqliteStore, PostgresStore)


def registry(store: RunStore) -> WorkerRegistry:
    assert isinstance(store, WorkerRegistry), f"{type(store).__name__} lacks the worker registry"
    return store


def worker(owner: str, started_at: float, **kw: Any) -> WorkerRecord:
    return WorkerRecord(owner, f"w-{owner}", "host-a", 4242, started_at, **kw)


class WorkerConformance(StoreTestBase):
    async def test_register_then_list_shows_every_field(
        self, store: RunStore, clock: FakeClock
    ) -> None:
        reg = registry(store)
        t0 = clock.now()
        await reg.register_worker(
            worker("o1", t0, queues=["a", "b"], concurrency=8, heartbeat_every=2.5)
        )
        clock.advance(1)
        await reg.register_worker(worker("o2", t0 + 1))
        got = await reg.list_workers()
        assert [w.owner for w in got] == ["o2", "o1"]  # most recently started first
        o1 = got[1]
        assert (o1.worker_id, o1.host, o1.pid, o1.started_at) == ("w-o1", "host-a", 4242, t0)
        assert (o1.queues, o1.concurrency, o1.in_flight, o1.stopped_at) == (["a", "b"], 8, 0, None)
        assert (o1.heartbeat_at, o1.heartbeat_every) == (t0, 2.5)
        assert got[0].queues is None  # every queue

    async def test_heartbeat_stamps_now_and_in_flight(
        self, store: RunStore, clock: FakeClock
    ) -> None:
        reg = registry(store)
        await reg.register_worker(worker("o1", clock.now()))
        clock.advance(5)
        assert await reg.heartbeat_worker("o1", 3) is True
        (w,) = await reg.list_workers()
        assert (w.heartbeat_at, w.in_flight) == (clock.now(), 3)
        assert await reg.heartbeat_worker("nobody", 1) is False

    async def test_stopped_worker_is_marked_and_no_longer_beats(
        self, store: RunStore, clock: FakeClock
    ) -> None:
        reg = registry(store)
        await reg.register_worker(worker("o1", clock.now()))
        await reg.heartbeat_worker("o1", 2)
        clock.advance(2)
        await reg.stop_worker("o1")
        (w,) = await reg.list_workers()
        assert (w.stopped_at, w.in_flight) == (clock.now(), 0)
        clock.advance(1)
        assert await reg.heartbeat_worker("o1", 1) is False
        (w,) = await reg.list_workers()
        assert w.stopped_at == clock.now() - 1
        # registering the same owner again (a restart of the row) clears the stop
        await reg.register_worker(worker("o1", clock.now()))
        (w,) = await reg.list_workers()
        assert w.stopped_at is None

    async def test_stale_rows_name_dead_workers_and_are_cleaned_up(
        self, store: RunStore, clock: FakeClock
    ) -> None:
        reg = registry(store)
        t0 = clock.now()
        for owner in ("dead", "live", "gone"):
            await reg.register_worker(worker(owner, t0))
        await reg.stop_worker("gone")
        clock.advance(10)
        await reg.heartbeat_worker("live", 0)
        rows = await reg.list_workers()
        assert stale_owners(rows, clock.now(), 5.0) == ["dead"]  # stopped ones are not dead
        assert stale_owners(rows, clock.now(), 5.0, exclude="dead") == []
        # a worker beating every 6 s is not dead after 10 s, whatever the observer's limit
        now = clock.now()
        await reg.register_worker(worker("slow", now, heartbeat_every=6.0))  # beats now
        assert "slow" not in stale_owners(await reg.list_workers(), now + 10, 5.0)
        assert "slow" in stale_owners(await reg.list_workers(), now + 12.5, 5.0)
        await reg.stop_worker("slow")
        assert await reg.delete_workers(clock.now() - 5) == 2  # "dead" and "gone"
        assert sorted(w.owner for w in await reg.list_workers()) == ["live", "slow"]

    async def test_registry_is_shared_between_store_instances(
        self, store_factory: StoreFactory, clock: FakeClock
    ) -> None:
        a, b = registry(await store_factory()), registry(await store_factory())
        await a.register_worker(worker("o1", clock.now()))
        clock.advance(1)
        assert await b.heartbeat_worker("o1", 7)
        (w,) = await a.list_workers()
        assert (w.in_flight, w.heartbeat_at) == (7, clock.now())
