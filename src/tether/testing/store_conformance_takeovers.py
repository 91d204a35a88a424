"""Conformance: a claim says whose lease it took over (``Lease.previous_owner``), and the store
counts the ``lease_takeover`` events recorded (``LeaseTakeovers``)."""

from __future__ import annotations

from tether.store.lease_takeovers import TAKEOVER_EVENT, LeaseTakeovers
from tether.store.protocol import RunStore
from tether.store.queue_limits import QueueControl
from tether.store.types import Commit
from tether.testing.clock import FakeClock
from tether.testing.store_helpers import StoreTestBase, create, ev


class TakeoverConformance(StoreTestBase):
    async def test_a_claim_names_the_owner_it_took_over_from(
        self, store: RunStore, clock: FakeClock
    ) -> None:
        for run_id in ("a", "b", "c", "d"):
            await create(store, run_id)
            clock.advance(1)
        fresh = await store.claim_runs("w1", 10, limit=2)
        assert [(x.run_id, x.previous_owner) for x in fresh] == [("a", None), ("b", None)]
        assert [x.run_id for x in await store.claim_runs("w2", 10, limit=1)] == ["c"]
        released = await store.claim_runs("w3", 10, limit=1)  # d, never held: no one's
        await store.commit("d", released[0].token, Commit(release_lease=True))
        clock.advance(11)  # every lease expired
        taken = await store.claim_runs("w9", 10, dead_owners=["w2"])
        got = {x.run_id: (x.previous_owner, x.token) for x in taken}
        # orphans first (their owners' leases expired), then the released run: no one's
        assert got == {"a": ("w1", 2), "b": ("w1", 2), "c": ("w2", 2), "d": (None, 2)}
        assert [x.run_id for x in taken][-1] == "d"

    async def test_a_claim_under_a_limit_names_it_too(
        self, store: RunStore, clock: FakeClock
    ) -> None:
        assert isinstance(store, QueueControl)
        await store.set_queue_limit("queue", "default", max_running=5)
        await create(store, "a")
        assert [x.previous_owner for x in await store.claim_runs("w1", 10)] == [None]
        clock.advance(11)
        taken = await store.claim_runs("w2", 10)
        assert [(x.run_id, x.previous_owner) for x in taken] == [("a", "w1")]

    async def test_takeover_events_are_counted(self, store: RunStore) -> None:
        assert isinstance(store, LeaseTakeovers)
        assert await store.count_takeovers() == 0
        await create(store, "a", events=[ev(TAKEOVER_EVENT, **{"from": "w1", "to": "w2"})])
        await create(store, "b", events=[ev("note")])
        await store.commit("b", None, Commit(events=[ev(TAKEOVER_EVENT), ev(TAKEOVER_EVENT)]))
        assert await store.count_takeovers() == 3
