"""The RunStore conformance suite against memory, SQLite and PostgreSQL (see conftest)."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from tether.core.errors import IllegalTransitionError, LeaseLostError
from tether.core.lifecycle import RunStatus as S
from tether.store.protocol import LeaseCommit, RunStore
from tether.store.queue_limits import QueueControl
from tether.store.types import Commit, Event, RunRecord
from tether.testing.clock import FakeClock
from tether.testing.store_conformance import StoreConformance
from tether.testing.store_helpers import T0, StoreTestBase, create


class TestStoreConformance(StoreConformance):
    """``store_factory`` (tests/store/conftest.py) parametrizes every test over the backends."""


class TestLimitedClaimOrder(StoreTestBase):
    """The claim under shared limits (schema v24: its candidates read in claim order from
    indexes, ``store.sql_queue_limits``) fills a claim in claim order across orphans, released
    runs and new ones, passes over the runs of a full key and never admits a run above a
    queue, workflow or tenant limit."""

    async def test_a_limited_claim_is_filled_in_claim_order_within_every_limit(
        self, store: RunStore, clock: FakeClock
    ) -> None:
        assert isinstance(store, QueueControl)
        await create(
            store,
            "held-acme",
            owner="alive",
            lease_token=1,
            lease_expires_at=T0 + 600,
            tenant="acme",
        )
        await store.set_queue_limit("tenant", "acme", max_running=3)  # one runs: room for 2
        await store.set_queue_limit("queue", "mail", max_running=2)
        await store.set_queue_limit("workflow", "wf-x", max_running=1)
        new = [
            ("new-acme", {"tenant": "acme", "priority": 9}),  # first new one: acme is full then
            ("new-mail-1", {"queue": "mail", "tenant": "bob"}),
            ("new-mail-2", {"queue": "mail", "tenant": "bob"}),
            ("new-mail-3", {"queue": "mail", "tenant": "bob"}),
            ("new-x1", {"workflow": "wf-x"}),
            ("new-x2", {"workflow": "wf-x"}),
            ("new-zed", {}),
        ]
        for run_id, fields in new:
            await create(store, run_id, status=S.PLANNED, **fields)  # type: ignore[arg-type]
            clock.advance(1)
        for run_id, priority, tenant in [("released-bob", -1, "bob"), ("released-acme", 3, "acme")]:
            await create(store, run_id, status=S.EXECUTING, priority=priority, tenant=tenant)
            lease = await store.acquire_lease(run_id, "w0", 10)
            assert lease is not None
            await store.release_lease(run_id, lease.token)
            clock.advance(1)
        for run_id, priority, tenant in [("orphan-acme", 0, "acme"), ("orphan-bob", 2, "bob")]:
            await create(
                store,
                run_id,
                owner="gone",
                lease_token=1,
                lease_expires_at=clock.now(),  # the lease of an owner that is gone
                priority=priority,
                tenant=tenant,
            )
            clock.advance(1)
        first = await store.claim_runs("w1", 30, limit=5)
        assert [lease.run_id for lease in first] == [
            "orphan-bob",
            "orphan-acme",
            "released-acme",  # acme's last place: new-acme waits
            "released-bob",
            "new-mail-1",
        ]
        assert [lease.previous_owner for lease in first] == ["gone", "gone", None, None, None]
        rest = await store.claim_runs("w2", 30, limit=10)
        assert [lease.run_id for lease in rest] == ["new-mail-2", "new-x1", "new-zed"]
        assert await store.claim_runs("w3", 30, limit=10) == []  # every limited key is full
        running = {
            r.run_id: r for r in await store.list_runs() if r.owner is not None
        }  # never above a limit: acme 3, mail 2, wf-x 1
        assert sum(r.tenant == "acme" for r in running.values()) == 3
        assert sum(r.queue == "mail" for r in running.values()) == 2
        assert sum(r.workflow == "wf-x" for r in running.values()) == 1


class TestLeaseAndCommit(StoreTestBase):
    """``LeaseCommit``: a resume's lease and its commit land in one write, only while the run
    is unowned under the token (and event sequence) the resumer read; refused, nothing moves."""

    @staticmethod
    def _answer(run: RunRecord, release: bool = False) -> Commit:
        return Commit(
            status=S.EXECUTING,
            transitions=[(S.ESCALATED, S.EXECUTING, "user", "answered")],
            escalation=None,
            set_escalation=True,
            release_lease=release,
            base=run,
        )

    async def test_the_lease_and_the_commit_land_together(
        self, store: RunStore, clock: FakeClock
    ) -> None:
        assert isinstance(store, LeaseCommit)
        seen = await create(store, "r1", status=S.ESCALATED, escalation={"kind": "interrupt"})
        done = await store.lease_and_commit("r1", "w1", 30.0, seen.lease_token, self._answer(seen))
        assert done is not None
        assert (done.status, done.owner, done.escalation) == (S.EXECUTING, "w1", None)
        assert done.lease_token == seen.lease_token + 1
        assert done.lease_expires_at == T0 + 30.0
        stored = await store.get_run("r1")
        assert (stored.status, stored.owner, stored.lease_token) == (
            S.EXECUTING,
            "w1",
            seen.lease_token + 1,
        )
        assert [(t.src, t.dst) for t in await store.list_transitions("r1")][-1] == (
            S.ESCALATED,
            S.EXECUTING,
        )
        with pytest.raises(LeaseLostError):  # the token read is fenced off now
            await store.commit("r1", seen.lease_token, Commit(metadata={"x": 1}))
        await store.commit("r1", done.lease_token, Commit(metadata={"x": 1}))

    async def test_a_released_lease_leaves_the_run_claimable(self, store: RunStore) -> None:
        assert isinstance(store, LeaseCommit)
        seen = await create(store, "r1", status=S.ESCALATED)
        done = await store.lease_and_commit(
            "r1", "w1", 30.0, seen.lease_token, self._answer(seen, release=True)
        )
        assert done is not None and done.owner is None and done.status is S.EXECUTING
        assert done.lease_token == seen.lease_token + 1
        claimed = await store.claim_runs("w2", 30.0)
        assert [r.run_id for r in claimed] == ["r1"]

    async def test_an_owned_run_is_left_as_it_was(self, store: RunStore) -> None:
        assert isinstance(store, LeaseCommit)
        seen = await create(store, "r1", status=S.ESCALATED)
        hops = len(await store.list_transitions("r1"))
        lease = await store.acquire_lease("r1", "other", 30.0)
        assert lease is not None
        for token in (seen.lease_token, lease.token):
            answer = self._answer(seen)
            assert await store.lease_and_commit("r1", "w1", 30.0, token, answer) is None
        stored = await store.get_run("r1")
        assert (stored.status, stored.owner, stored.lease_token) == (
            S.ESCALATED,
            "other",
            lease.token,
        )
        assert len(await store.list_transitions("r1")) == hops

    async def test_a_run_leased_or_written_since_it_was_read_is_not_touched(
        self, store: RunStore
    ) -> None:
        assert isinstance(store, LeaseCommit)
        seen = await create(store, "r1", status=S.ESCALATED)
        lease = await store.acquire_lease("r1", "other", 30.0)  # leased and released since
        assert lease is not None
        await store.commit("r1", lease.token, Commit(release_lease=True))
        answer = self._answer(seen)
        assert await store.lease_and_commit("r1", "w1", 30.0, seen.lease_token, answer) is None
        # written under the current token since the base was read: its event sequence moved
        now = await store.get_run("r1")
        event = Event("r1", 0, "note", T0, None, None, {})
        lease = await store.acquire_lease("r1", "other", 30.0)
        assert lease is not None
        await store.commit("r1", lease.token, Commit(events=[event]))
        await store.release_lease("r1", lease.token)
        stale = dataclasses.replace(now, lease_token=lease.token)
        answer = self._answer(stale)
        assert await store.lease_and_commit("r1", "w1", 30.0, lease.token, answer) is None
        stored = await store.get_run("r1")
        assert (stored.status, stored.owner, stored.lease_token) == (
            S.ESCALATED,
            None,
            lease.token,
        )

    async def test_a_refused_commit_leaves_the_lease_and_status_as_they_were(
        self, store: RunStore
    ) -> None:
        assert isinstance(store, LeaseCommit)
        seen = await create(store, "r1", status=S.ESCALATED)
        illegal = Commit(
            status=S.COMPLETED,
            transitions=[(S.ESCALATED, S.COMPLETED, "user", "no")],
            base=seen,
        )
        with pytest.raises(IllegalTransitionError):
            await store.lease_and_commit("r1", "w1", 30.0, seen.lease_token, illegal)
        stored = await store.get_run("r1")
        assert (stored.status, stored.owner, stored.lease_token) == (
            S.ESCALATED,
            None,
            seen.lease_token,
        )
        lease = await store.acquire_lease("r1", "w2", 30.0)
        assert lease is not None and lease.token == seen.lease_token + 1

    async def test_of_two_resumers_that_read_the_same_run_one_wins(self, store: RunStore) -> None:
        assert isinstance(store, LeaseCommit)
        seen = await create(store, "r1", status=S.ESCALATED)
        hops = len(await store.list_transitions("r1"))
        first, second = await asyncio.gather(
            store.lease_and_commit("r1", "a", 30.0, seen.lease_token, self._answer(seen)),
            store.lease_and_commit("r1", "b", 30.0, seen.lease_token, self._answer(seen)),
        )
        assert (first is None) != (second is None)
        winner = first or second
        assert winner is not None
        stored = await store.get_run("r1")
        assert (stored.owner, stored.lease_token) == (winner.owner, seen.lease_token + 1)
        assert len(await store.list_transitions("r1")) == hops + 1  # one resume
