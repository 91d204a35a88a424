"""Conformance: durable timers and cron schedules (``tether.store.timers``).

Time stands still unless a test moves the ``FakeClock``; racing claimers are separate store
instances on one database (the in-memory store hands back the same instance).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from tether.store.protocol import RunStore
from tether.store.timers import Schedule, Timer, TimerStore
from tether.testing.clock import FakeClock
from tether.testing.store_helpers import T0, StoreFactory, StoreTestBase, create

if TYPE_CHECKING:  # every backend satisfies TimerStore statically too (checked by mypy)
    from tether.store.memory import MemoryStore
    from tether.store.postgres import PostgresStore
    from tether.store.sqlite import SqliteStore

    _BACKENDS: tuple[type[TimerStore], ...] = (MemoryStore, SqliteStore, PostgresStore)

K = "test_kind"


def timers(store: RunStore) -> TimerStore:
    assert isinstance(store, TimerStore), f"{type(store).__name__} keeps no timers"
    return store


def timer(tid: str, fire_at: float, run_id: str | None = "r1", kind: str = K) -> Timer:
    return Timer(tid, run_id, kind, fire_at, {"n": tid, "nested": [1, {"a": None}]})


class TimerConformance(StoreTestBase):
    # -- timers -----------------------------------------------------------------------------
    async def test_a_timer_is_claimed_once_due_and_keeps_its_payload(
        self, store: RunStore, clock: FakeClock
    ) -> None:
        ts = timers(store)
        assert await ts.add_timer(timer("t1", T0 + 10))
        assert not await ts.add_timer(timer("t1", T0 + 99))  # same id: nothing changes
        assert await ts.claim_due_timers("w1", 30, kinds=[K]) == []
        clock.advance(10)
        (got,) = await ts.claim_due_timers("w1", 30, kinds=[K])
        assert (got.timer_id, got.fire_at, got.claimed_by) == ("t1", T0 + 10, "w1")
        assert got.payload == {"n": "t1", "nested": [1, {"a": None}]}
        assert await ts.claim_due_timers("w2", 30, kinds=[K]) == []  # claimed by w1
        assert await ts.finish_timer("t1", "w1")
        assert not await ts.finish_timer("t1", "w1")
        clock.advance(60)
        assert await ts.claim_due_timers("w2", 30, kinds=[K]) == []  # fired: never again
        (done,) = await ts.list_timers("r1", pending=False)
        assert done.fired_at == T0 + 10
        assert await ts.list_timers("r1") == []

    async def test_only_listed_kinds_earliest_first_at_most_limit(
        self, store: RunStore, clock: FakeClock
    ) -> None:
        ts = timers(store)
        for i, at in enumerate([5, 3, 4, 1]):
            await ts.add_timer(timer(f"t{i}", T0 + at))
        await ts.add_timer(timer("other", T0, kind="other_kind"))
        clock.advance(10)
        got = await ts.claim_due_timers("w", 30, kinds=[K], limit=3)
        assert [t.timer_id for t in got] == ["t3", "t1", "t2"], got
        assert [t.timer_id for t in await ts.claim_due_timers("w", 30, kinds=[K])] == ["t0"]
        assert await ts.claim_due_timers("w", 30, kinds=[]) == []

    async def test_a_claim_for_some_workflows_leaves_other_workflows_timers(
        self, store: RunStore, clock: FakeClock
    ) -> None:
        ts = timers(store)
        await create(store, "mine", workflow="billing")
        await create(store, "theirs", workflow="support")
        await ts.add_timer(timer("a", T0, run_id="mine"))
        await ts.add_timer(timer("b", T0, run_id="theirs"))
        await ts.add_timer(timer("c", T0, run_id=None))  # of no run
        await ts.add_timer(timer("d", T0, run_id="gone"))  # its run was purged
        got = await ts.claim_due_timers("w", 30, kinds=[K], workflows=["billing"])
        assert [t.timer_id for t in got] == ["a", "c", "d"]
        assert await ts.claim_due_timers("w2", 30, kinds=[K], workflows=[]) == []
        (b,) = await ts.claim_due_timers("w2", 30, kinds=[K])  # no filter: any workflow
        assert b.timer_id == "b"

    async def test_an_expired_claim_is_claimed_again_and_the_old_owner_cannot_finish(
        self, store: RunStore, clock: FakeClock
    ) -> None:
        ts = timers(store)
        await ts.add_timer(timer("t", T0))
        assert len(await ts.claim_due_timers("dead", 5, kinds=[K])) == 1
        clock.advance(5)
        (again,) = await ts.claim_due_timers("alive", 5, kinds=[K])
        assert again.claimed_by == "alive"
        assert not await ts.finish_timer("t", "dead")
        assert await ts.finish_timer("t", "alive")

    async def test_claimed_timers_given_back_are_claimable_at_once(
        self, store: RunStore, clock: FakeClock
    ) -> None:
        ts = timers(store)
        for tid in ("t1", "t2", "t3"):
            await ts.add_timer(timer(tid, T0))
        claimed = await ts.claim_due_timers("stopping", 30, kinds=[K])
        assert [t.timer_id for t in claimed] == ["t1", "t2", "t3"]
        assert await ts.finish_timer("t3", "stopping")
        # another owner's give-back, an unknown id and a fired timer change nothing
        assert await ts.release_timers(["t1", "t2"], "someone-else") == 0
        assert await ts.release_timers(["t1", "t2", "t3", "nope"], "stopping") == 2
        assert await ts.release_timers(["t1"], "stopping") == 0  # given back already
        again = await ts.claim_due_timers("heir", 30, kinds=[K])  # no claim to wait out
        assert [(t.timer_id, t.claimed_by) for t in again] == [("t1", "heir"), ("t2", "heir")]
        assert not await ts.finish_timer("t1", "stopping")
        assert await ts.finish_timer("t1", "heir")

    async def test_racing_claimers_claim_each_timer_once(
        self, store_factory: StoreFactory, clock: FakeClock
    ) -> None:
        stores = [timers(await store_factory()) for _ in range(3)]
        for i in range(30):
            await stores[0].add_timer(timer(f"t{i:02}", T0 + i % 3))
        clock.advance(5)
        claims = await asyncio.gather(
            *(s.claim_due_timers(f"w{n}", 30, kinds=[K], limit=7) for n, s in enumerate(stores))
        )
        claims += [await stores[0].claim_due_timers("w9", 30, kinds=[K], limit=30)]
        ids = [t.timer_id for batch in claims for t in batch]
        assert sorted(ids) == [f"t{i:02}" for i in range(30)]

    async def test_cancel_deletes_pending_timers_of_a_run_by_kind(
        self, store: RunStore, clock: FakeClock
    ) -> None:
        ts = timers(store)
        await ts.add_timer(timer("a", T0 + 1))
        await ts.add_timer(timer("b", T0 + 1, kind="other"))
        await ts.add_timer(timer("c", T0 + 1, run_id="r2"))
        assert await ts.cancel_timers("r1", K) == 1
        assert [t.timer_id for t in await ts.list_timers()] == ["b", "c"]
        assert await ts.cancel_timers("r1") == 1
        clock.advance(1)
        assert [t.timer_id for t in await ts.claim_due_timers("w", 9, kinds=[K, "other"])] == ["c"]

    async def test_purge_deletes_only_timers_fired_before_the_cut_off(
        self, store: RunStore, clock: FakeClock
    ) -> None:
        ts = timers(store)
        for tid in ("old", "new", "pending"):
            await ts.add_timer(timer(tid, T0))
        await ts.claim_due_timers("w", 30, kinds=[K])
        assert await ts.finish_timer("old", "w")
        clock.advance(10)
        assert await ts.finish_timer("new", "w")
        assert await ts.purge_timers(T0 + 10) == 1
        assert [t.timer_id for t in await ts.list_timers(pending=False)] == ["new", "pending"]

    # -- schedules --------------------------------------------------------------------------
    async def test_schedule_put_get_list_and_due(self, store: RunStore, clock: FakeClock) -> None:
        ts = timers(store)
        s = await ts.put_schedule(Schedule("hourly", "0 * * * *", "wf", {"x": [1]}, T0 + 60))
        assert (s.name, s.cron, s.workflow, s.input, s.next_fire_at) == (
            "hourly",
            "0 * * * *",
            "wf",
            {"x": [1]},
            T0 + 60,
        )
        assert s.enabled and s.last_slot is None
        await ts.put_schedule(Schedule("off", "* * * * *", "wf", None, T0, enabled=False))
        assert [x.name for x in await ts.list_schedules()] == ["hourly", "off"]
        assert await ts.list_schedules(due_at=T0 + 59) == []
        assert [x.name for x in await ts.list_schedules(due_at=T0 + 60)] == ["hourly"]
        got = await ts.get_schedule("off")
        assert got is not None and got.input is None and not got.enabled
        assert await ts.get_schedule("nope") is None
        assert await ts.delete_schedule("off")
        assert not await ts.delete_schedule("off")

    async def test_registering_again_keeps_the_next_slot_unless_the_cron_changes(
        self, store: RunStore
    ) -> None:
        ts = timers(store)
        await ts.put_schedule(Schedule("s", "0 * * * *", "wf", None, T0 + 60))
        assert await ts.advance_schedule("s", T0 + 60, T0 + 3660, T0 + 60)
        again = await ts.put_schedule(Schedule("s", "0 * * * *", "wf", {"new": 1}, T0 + 999))
        assert (again.next_fire_at, again.last_slot, again.input) == (
            T0 + 3660,
            T0 + 60,
            {"new": 1},
        )
        moved = await ts.put_schedule(Schedule("s", "*/5 * * * *", "wf", None, T0 + 300))
        assert (moved.next_fire_at, moved.last_slot, moved.cron) == (T0 + 300, None, "*/5 * * * *")

    async def test_advance_is_a_compare_and_set(self, store_factory: StoreFactory) -> None:
        stores = [timers(await store_factory()) for _ in range(3)]
        await stores[0].put_schedule(Schedule("s", "* * * * *", "wf", None, T0))
        won = await asyncio.gather(*(s.advance_schedule("s", T0, T0 + 60, T0) for s in stores))
        assert sorted(won) == [False, False, True]
        got = await stores[1].get_schedule("s")
        assert got is not None and (got.next_fire_at, got.last_slot) == (T0 + 60, T0)
        assert not await stores[2].advance_schedule("gone", T0, T0 + 60, T0)
