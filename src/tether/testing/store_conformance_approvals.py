"""Conformance: approval requests and approvers (``tether.store.approvals``).

Racing writers are separate store instances on one database (the in-memory store hands back
the same instance).
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import TYPE_CHECKING

import pytest

from tether.core.errors import ApprovalNotFoundError, InvalidInputError
from tether.store.approvals import ApprovalRecord, ApprovalStore, Approver
from tether.store.protocol import RunStore
from tether.testing.clock import FakeClock
from tether.testing.store_helpers import T0, StoreFactory, StoreTestBase

if TYPE_CHECKING:  # every backend satisfies ApprovalStore statically too (checked by mypy)
    from tether.store.memory import MemoryStore
    from tether.store.postgres import PostgresStore
    from tether.store.sqlite import SqliteStore

    _BACKENDS: tuple[type[ApprovalStore], ...] = (MemoryStore, SqliteStore, PostgresStore)


def approvals(store: RunStore) -> ApprovalStore:
    assert isinstance(store, ApprovalStore), f"{type(store).__name__} keeps no approvals"
    return store


def request(aid: str, intent_hash: str = "h1", run_id: str = "r1") -> ApprovalRecord:
    intent = {"tool": "refund", "args": {"amount": 40, "note": "é\u0000"}, "run_id": run_id}
    rule = {"roles": ["finance"], "required": 2, "on_deadline": {"escalate": {"roles": ["m"]}}}
    return ApprovalRecord(
        aid, run_id, intent_hash, intent, "why", rule, deadline_at=T0 + 60, history=[{"a": 1}]
    )


class ApprovalConformance(StoreTestBase):
    async def test_a_request_round_trips_and_one_is_open_per_intent(
        self, store: RunStore, clock: FakeClock
    ) -> None:
        s = approvals(store)
        got, created = await s.create_approval(request("a1"))
        assert created and (got.status, got.version, got.created_at) == ("pending", 0, T0)
        assert got.intent["args"] == {"amount": 40, "note": "é\u0000"}
        assert got.rule["on_deadline"] == {"escalate": {"roles": ["m"]}}
        assert (got.deadline_at, got.used_at, got.history) == (T0 + 60, None, [{"a": 1}])
        again, created = await s.create_approval(request("a2"))  # same intent, still open
        assert not created and again.approval_id == "a1"
        assert await s.get_approval("a2") is None
        assert await s.get_approval("a1") == got

    async def test_update_is_a_compare_and_set(self, store: RunStore, clock: FakeClock) -> None:
        s = approvals(store)
        rec, _ = await s.create_approval(request("a1"))
        clock.advance(5)
        first = dataclasses.replace(rec, decisions=[{"approver": "x"}], level=1)
        assert await s.update_approval(first)
        assert not await s.update_approval(dataclasses.replace(rec, status="approved"))
        now = await s.get_approval("a1")
        assert now is not None
        assert (now.version, now.decisions, now.level, now.status) == (
            1,
            [{"approver": "x"}],
            1,
            "pending",
        )
        assert now.updated_at == T0 + 5
        now.status, now.used_at = "approved", T0 + 5
        assert await s.update_approval(now)
        assert not await s.update_approval(dataclasses.replace(rec, version=99))
        # decided: a new request for the same intent may open now
        _, created = await s.create_approval(request("a3"))
        assert created

    async def test_one_of_racing_writers_wins(
        self, store_factory: StoreFactory, clock: FakeClock
    ) -> None:
        stores = [approvals(await store_factory()) for _ in range(3)]
        rec, _ = await stores[0].create_approval(request("a1"))
        used = [dataclasses.replace(rec, used_at=T0, status="approved") for _ in stores]
        wins = await asyncio.gather(
            *(s.update_approval(u) for s, u in zip(stores, used, strict=True))
        )
        assert sorted(wins) == [False, False, True]
        made = await asyncio.gather(
            *(s.create_approval(request(f"b{i}", "h2")) for i, s in enumerate(stores))
        )
        assert sum(created for _, created in made) == 1
        assert len({r.approval_id for r, _ in made}) == 1

    async def test_listing_filters_newest_first(self, store: RunStore, clock: FakeClock) -> None:
        s = approvals(store)
        for i, (h, run) in enumerate([("h1", "r1"), ("h2", "r1"), ("h3", "r2")]):
            await s.create_approval(request(f"a{i}", h, run))
            clock.advance(1)
        assert [r.approval_id for r in await s.list_approvals()] == ["a2", "a1", "a0"]
        assert [r.approval_id for r in await s.list_approvals(run_id="r1")] == ["a1", "a0"]
        assert [r.approval_id for r in await s.list_approvals(intent_hash="h3")] == ["a2"]
        assert [r.approval_id for r in await s.list_approvals(limit=1)] == ["a2"]
        assert len(await s.list_approvals(limit=10**20)) == 3
        # paged: before=<the last request of the previous page>, filters kept
        assert [r.approval_id for r in await s.list_approvals(limit=2, before="a2")] == [
            "a1",
            "a0",
        ]
        assert [r.approval_id for r in await s.list_approvals(run_id="r1", before="a1")] == ["a0"]
        assert await s.list_approvals(before="a0") == []
        with pytest.raises(ApprovalNotFoundError):
            await s.list_approvals(before="no-such-request")
        with pytest.raises(InvalidInputError, match="limit must be a whole number"):
            await s.list_approvals(limit=1.0)  # type: ignore[arg-type]
        a0 = await s.get_approval("a0")
        assert a0 is not None
        a0.status = "rejected"
        assert await s.update_approval(a0)
        assert [r.approval_id for r in await s.list_approvals(status="rejected")] == ["a0"]
        assert await s.list_approvals(status="pending", run_id="r9") == []

    async def test_approvers_register_and_rekey(self, store: RunStore, clock: FakeClock) -> None:
        s = approvals(store)
        a = await s.put_approver(Approver("bob", "ops", "PEM1"))
        assert (a.approver_id, a.role, a.public_key, a.created_at) == ("bob", "ops", "PEM1", T0)
        await s.put_approver(Approver("alice", "finance", "PEM2"))
        clock.advance(3)
        b = await s.put_approver(Approver("bob", "manager", "PEM3"))
        assert (b.role, b.public_key, b.created_at, b.updated_at) == ("manager", "PEM3", T0, T0 + 3)
        assert await s.get_approver("bob") == b
        assert await s.get_approver("nobody") is None
        assert [x.approver_id for x in await s.list_approvers()] == ["alice", "bob"]

    async def test_approvers_are_kept_per_tenant(self, store: RunStore, clock: FakeClock) -> None:
        """Before: approvers were keyed by id alone, so a tenant registering ``alice`` re-keyed
        another tenant's ``alice`` (and one tenant's approver decided every tenant's requests)."""
        s = approvals(store)
        await s.put_approver(Approver("alice", "ops", "PEM0"))
        await s.put_approver(Approver("alice", "finance", "PEM1", tenant="acme"))
        await s.put_approver(Approver("alice", "finance", "PEM2", tenant="ACME"))
        await s.put_approver(Approver("bob", "ops", "PEM3", tenant="acme"))
        got = await s.get_approver("alice")
        assert got is not None and (got.public_key, got.role, got.tenant) == ("PEM0", "ops", None)
        for tenant, pem in (("acme", "PEM1"), ("ACME", "PEM2")):  # a tenant is its exact name
            a = await s.get_approver("alice", tenant)
            assert a is not None and (a.public_key, a.tenant) == (pem, tenant)
        assert await s.get_approver("bob") is None
        assert await s.get_approver("bob", "ACME") is None
        clock.advance(3)
        rekeyed = await s.put_approver(Approver("alice", "finance", "PEM4", tenant="acme"))
        assert (rekeyed.public_key, rekeyed.created_at, rekeyed.updated_at) == ("PEM4", T0, T0 + 3)
        assert await s.get_approver("alice") == got  # the other alices are left alone
        acme = await s.list_approvers("acme")
        assert [(a.approver_id, a.public_key, a.tenant) for a in acme] == [
            ("alice", "PEM4", "acme"),
            ("bob", "PEM3", "acme"),
        ]
        every = await s.list_approvers()
        assert [a.approver_id for a in every] == ["alice", "alice", "alice", "bob"]
        assert {(a.public_key, a.tenant) for a in every} == {
            ("PEM0", None),
            ("PEM4", "acme"),
            ("PEM2", "ACME"),
            ("PEM3", "acme"),
        }
        assert every[0].tenant is None  # no tenant first
        assert await s.list_approvers("nobody") == []
        for bad in ("acme ", "", " acme"):  # "acme " would be a tenant no run of acme's has
            with pytest.raises(InvalidInputError, match="tenant"):
                await s.put_approver(Approver("carol", "ops", "PEM5", tenant=bad))
        assert len(await s.list_approvers()) == 4
