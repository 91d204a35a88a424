"""The RunStore conformance suite against memory, SQLite and PostgreSQL (see conftest)."""

from __future__ import annotations

from tether.core.lifecycle import RunStatus as S
from tether.store.protocol import RunStore
from tether.store.queue_limits import QueueControl
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
