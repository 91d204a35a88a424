"""Conformance: leases, fencing and claims (time moved with a FakeClock)."""

from __future__ import annotations

import asyncio

import pytest

from tether.core.errors import LeaseLostError, StepNotFoundError
from tether.store.protocol import RunStore
from tether.store.types import Commit, Lease, NodeWrite
from tether.testing.clock import FakeClock
from tether.testing.store_helpers import T0, S, StoreFactory, StoreTestBase, checkpoint, create, ev


async def _acquire(store: RunStore, run_id: str, owner: str, ttl: float) -> Lease:
    lease = await store.acquire_lease(run_id, owner, ttl)
    assert lease is not None, f"{owner} could not acquire {run_id}"
    return lease


class LeaseConformance(StoreTestBase):
    async def test_lease_lifecycle(self, store: RunStore, clock: FakeClock) -> None:
        await create(store, "r1")
        l1 = await _acquire(store, "r1", "w1", 10)
        assert (l1.token, l1.expires_at) == (1, T0 + 10)
        run = await store.get_run("r1")
        assert (run.owner, run.lease_token, run.lease_expires_at) == ("w1", 1, T0 + 10)
        clock.advance(5)
        again = await _acquire(store, "r1", "w1", 10)  # the holder re-acquires: same token
        assert (again.token, again.expires_at) == (1, T0 + 15)
        assert await store.acquire_lease("r1", "w2", 10) is None
        renewed = await store.renew_lease("r1", "w1", 1, 20)
        assert (renewed.token, renewed.expires_at) == (1, T0 + 25)
        with pytest.raises(LeaseLostError):
            await store.renew_lease("r1", "w2", 1, 10)  # right token, wrong owner
        clock.set(T0 + 25)  # expiry is inclusive: at expires_at the lease is free
        l2 = await _acquire(store, "r1", "w2", 10)
        assert l2.token == 2
        with pytest.raises(LeaseLostError):
            await store.renew_lease("r1", "w1", 1, 10)
        await store.release_lease("r1", 1)  # stale release: no effect
        assert (await store.get_run("r1")).owner == "w2"
        await store.release_lease("r1", 2)
        run = await store.get_run("r1")
        assert (run.owner, run.lease_token, run.lease_expires_at) == (None, 2, 0.0)
        assert (await _acquire(store, "r1", "w1", 10)).token == 3
        clock.advance(10)
        assert (await _acquire(store, "r1", "w1", 10)).token == 4  # own expired lease: new token

    async def test_stale_token_is_fenced_out(self, store: RunStore, clock: FakeClock) -> None:
        await create(store, "r1")
        old = await _acquire(store, "r1", "w1", 10)
        clock.advance(10)
        new = await _acquire(store, "r1", "w2", 10)
        assert new.token == old.token + 1
        stale = Commit(
            checkpoint=checkpoint("r1", 1),
            status=S.VALIDATING,
            events=[ev()],
            transitions=[(S.EXECUTING, S.VALIDATING, "w1", "")],
        )
        with pytest.raises(LeaseLostError):
            await store.commit("r1", old.token, stale)
        with pytest.raises(LeaseLostError):
            await store.put_node_write(old.token, NodeWrite("r1", 1, "t", "a", "done", {"x": 1}))
        with pytest.raises(LeaseLostError):
            await store.record_intent("r1", "k", "tool", {}, old.token)
        await store.record_intent("r1", "k", "tool", {}, new.token)
        with pytest.raises(LeaseLostError):
            await store.record_result("r1", "k", result=1, token=old.token)
        run = await store.get_run("r1")
        assert (run.status, run.step, run.event_seq, run.owner) == (S.EXECUTING, 0, 0, "w2")
        with pytest.raises(StepNotFoundError):
            await store.get_checkpoint("r1", 1)
        assert await store.get_node_writes("r1", 1) == []
        effect = await store.get_effect("r1", "k")
        assert effect is not None and effect.status == "pending"
        assert (await store.commit("r1", new.token, stale)).status is S.VALIDATING

    async def test_admin_write_bumps_the_token(self, store: RunStore) -> None:
        await create(store, "r1")
        lease = await _acquire(store, "r1", "w1", 10)
        cancel = Commit(
            status=S.CANCELLED, transitions=[(S.EXECUTING, S.CANCELLED, "operator", "cancelled")]
        )
        run = await store.commit("r1", None, cancel)
        assert (run.status, run.owner, run.lease_expires_at) == (S.CANCELLED, None, 0.0)
        assert run.lease_token == lease.token + 1
        with pytest.raises(LeaseLostError):
            await store.commit("r1", lease.token, Commit(events=[ev()]))
        with pytest.raises(LeaseLostError):
            await store.renew_lease("r1", "w1", lease.token, 10)
        await store.put_node_write(None, NodeWrite("r1", 1, "t", "a", "done"))  # admin: no fence
        await store.record_intent("r1", "k", "tool", {})
        assert (await store.get_run("r1")).lease_token == lease.token + 1  # only commit bumps

    async def test_commit_can_release_the_lease(self, store: RunStore) -> None:
        await create(store, "r1")
        lease = await _acquire(store, "r1", "w1", 10)
        run = await store.commit("r1", lease.token, Commit(release_lease=True))
        assert (run.owner, run.lease_expires_at, run.lease_token) == (None, 0.0, lease.token)
        assert (await _acquire(store, "r1", "w2", 10)).token == lease.token + 1

    async def test_claim_runs(self, store: RunStore, clock: FakeClock) -> None:
        specs = [
            ("a", S.EXECUTING, "wf1"),
            ("b", S.RECEIVED, "wf2"),
            ("c", S.ESCALATED, "wf1"),
            ("d", S.COMPLETED, "wf1"),
            ("e", S.PLANNED, "wf1"),
            ("f", S.VALIDATING, "wf1"),
            ("g", S.WAITING_FOR_TOOL, "wf1"),
            ("h", S.FAILED, "wf1"),
        ]
        for run_id, status, wf in specs:
            await create(store, run_id, status=status, workflow=wf)
            clock.advance(1)
        await _acquire(store, "e", "w0", 100)
        first = await store.claim_runs("w1", 30, limit=2)
        assert [(x.run_id, x.owner, x.token) for x in first] == [("a", "w1", 1), ("b", "w1", 1)]
        assert first[0].expires_at == clock.now() + 30
        assert (await store.get_run("a")).owner == "w1"
        assert [x.run_id for x in await store.claim_runs("w1", 30)] == ["f", "g"]
        assert await store.claim_runs("w2", 30) == []
        clock.advance(30)  # a, b, f, g expire; e is still held
        assert await store.claim_runs("w2", 30, workflows=[]) == []
        assert await store.claim_runs("w2", 30, limit=0) == []
        wf2 = await store.claim_runs("w2", 30, workflows=["wf2"])
        assert [(x.run_id, x.owner, x.token) for x in wf2] == [("b", "w2", 2)]
        assert [x.run_id for x in await store.claim_runs("w2", 30, workflows=["wf1", "x"])] == [
            "a",
            "f",
            "g",
        ]

    async def test_concurrent_claimers_never_share_a_run(
        self, store: RunStore, store_factory: StoreFactory
    ) -> None:
        peers = [store, *[await store_factory() for _ in range(3)]]
        ids = {f"r{i:02d}" for i in range(40)}
        for run_id in sorted(ids):
            await create(store, run_id)

        async def drain(peer: RunStore, owner: str) -> list[Lease]:
            got: list[Lease] = []
            while leases := await peer.claim_runs(owner, 60, limit=3):
                got += leases
                await asyncio.sleep(0)
            return got

        results = await asyncio.gather(*(drain(p, f"w{i}") for i, p in enumerate(peers)))
        claimed = [lease.run_id for leases in results for lease in leases]
        assert sorted(claimed) == sorted(ids)  # every run exactly once
        for i, leases in enumerate(results):
            for lease in leases:
                assert (await peers[-1].get_run(lease.run_id)).owner == f"w{i}"

    async def test_concurrent_acquire_has_one_winner(
        self, store: RunStore, store_factory: StoreFactory
    ) -> None:
        peer = await store_factory()
        for i in range(10):
            await create(store, f"r{i}")
            got = await asyncio.gather(
                store.acquire_lease(f"r{i}", "w1", 30), peer.acquire_lease(f"r{i}", "w2", 30)
            )
            winners = [lease for lease in got if lease is not None]
            assert len(winners) == 1 and winners[0].token == 1

    async def test_renew_leases_in_one_batch(self, store: RunStore, clock: FakeClock) -> None:
        for run_id in ("r1", "r2", "r3", "r4"):
            await create(store, run_id)
        for run_id in ("r1", "r2", "r3"):
            await _acquire(store, run_id, "w1", 10)
        await _acquire(store, "r4", "w2", 10)
        clock.advance(10)
        taken = await _acquire(store, "r3", "w2", 30)  # r3 expired and changed hands
        clock.advance(5)
        held = {"r1": 1, "r2": 1, "r3": 1, "r4": 1, "gone": 1}
        assert await store.renew_leases("w1", held, 20) == {"r3", "r4", "gone"}
        for run_id in ("r1", "r2"):
            run = await store.get_run(run_id)
            assert (run.owner, run.lease_token, run.lease_expires_at) == ("w1", 1, clock.now() + 20)
        r3 = await store.get_run("r3")  # a lost lease is left as its new holder has it
        assert (r3.owner, r3.lease_token, r3.lease_expires_at) == ("w2", 2, taken.expires_at)
        assert (await store.get_run("r4")).lease_expires_at == T0 + 10  # another owner's lease
        assert await store.renew_leases("w1", {"r1": 2}, 20) == {"r1"}  # wrong token
        assert await store.renew_leases("w1", {}, 20) == set()
        lease = await store.commit("r2", 1, Commit(release_lease=True))
        assert lease.owner is None
        assert await store.renew_leases("w1", {"r1": 1, "r2": 1}, 20) == {"r2"}  # released

    async def test_renew_many_leases(self, store: RunStore, clock: FakeClock) -> None:
        ids = [f"r{i:03d}" for i in range(300)]  # more than one statement's worth
        for run_id in ids:
            await create(store, run_id)
        assert len(await store.claim_runs("w1", 10, limit=300)) == 300
        clock.advance(10)  # every lease expired, none taken: renewal still holds them
        assert await store.renew_leases("w1", dict.fromkeys(ids, 1), 10) == set()
        assert await store.claim_runs("w2", 10, limit=300) == []
        runs = await store.list_runs(limit=300)
        assert {r.lease_expires_at for r in runs} == {clock.now() + 10}

    async def test_claim_takes_orphans_first(self, store: RunStore, clock: FakeClock) -> None:
        await create(store, "new")  # never started, and the oldest
        clock.advance(1)
        await create(store, "released")
        clock.advance(1)
        await create(store, "orphan")
        clock.advance(1)
        await create(store, "new2")
        await _acquire(store, "orphan", "dead", 5)
        await store.release_lease("released", (await _acquire(store, "released", "w0", 5)).token)
        clock.advance(5)  # the dead owner's lease on "orphan" expires
        first = await store.claim_runs("w1", 30, limit=1)
        assert [(x.run_id, x.token) for x in first] == [("orphan", 2)]
        assert [x.run_id for x in await store.claim_runs("w1", 30, limit=1)] == ["released"]
        rest = await store.claim_runs("w1", 30, limit=5)
        assert [(x.run_id, x.token) for x in rest] == [("new", 1), ("new2", 1)]

    async def test_claim_never_returns_excluded_runs(
        self, store: RunStore, clock: FakeClock
    ) -> None:
        for run_id in ("a", "b", "c", "d", "e", "f"):
            await create(store, run_id)
            await _acquire(store, run_id, "w1", 5)
        clock.advance(5)  # every lease of w1 expired, as if its heartbeat had stalled
        mine = ["a", "c", "d", "e", "f"]
        got = await store.claim_runs("w1", 30, exclude=mine)
        assert [(x.run_id, x.token) for x in got] == [("b", 2)]
        for run_id in mine:
            assert (await store.get_run(run_id)).lease_token == 1
        assert await store.claim_runs("w1", 30, exclude=[*mine, "b"]) == []
        other = await store.claim_runs("w2", 30, limit=10, exclude=["zzz"])
        assert sorted(x.run_id for x in other) == mine

    async def test_claim_takes_the_runs_of_dead_owners_at_once(
        self, store: RunStore, clock: FakeClock
    ) -> None:
        for run_id in ("a", "b", "c", "d"):
            await create(store, run_id)
            clock.advance(1)
        await _acquire(store, "a", "dead", 60)
        await _acquire(store, "b", "live", 60)
        await _acquire(store, "d", "dead2", 60)
        assert await store.lease_owners() == ["dead", "dead2", "live"]
        assert await store.claim_runs("w1", 30, limit=10, exclude=["c"]) == []  # none expired
        await store.release_lease("c", (await _acquire(store, "c", "w0", 5)).token)
        dead = ["dead", "dead2", "gone"]
        got = await store.claim_runs("w1", 30, limit=2, dead_owners=dead)
        # the dead owners' runs are orphans: they go before the released run
        assert sorted((x.run_id, x.token) for x in got) == [("a", 2), ("d", 2)]
        got = await store.claim_runs("w1", 30, limit=10, dead_owners=dead)
        assert [(x.run_id, x.token) for x in got] == [("c", 2)]
        assert (await store.get_run("b")).owner == "live"  # a live owner keeps its lease
        assert await store.lease_owners() == ["live", "w1"]
        clock.advance(45)  # w1's leases (30 s) expired, live's (60 s) not
        assert await store.lease_owners() == ["live"]
