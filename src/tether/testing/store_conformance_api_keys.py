"""Conformance: API keys (``tether.store.api_keys``) and what a tenant sees of the store
(``list_runs(tenant=)``, ``list_approvals(tenant=)``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from tether.core.errors import ApprovalNotFoundError, InvalidInputError, RunNotFoundError
from tether.store.api_keys import ApiKeyRecord, ApiKeyStore
from tether.store.approvals import ApprovalRecord, ApprovalStore
from tether.store.protocol import RunStore
from tether.testing.clock import FakeClock
from tether.testing.store_helpers import T0, StoreTestBase, create

if TYPE_CHECKING:  # every backend satisfies ApiKeyStore statically too (checked by mypy)
    from tether.store.memory import MemoryStore
    from tether.store.postgres import PostgresStore
    from tether.store.sqlite import SqliteStore

    _BACKENDS: tuple[type[ApiKeyStore], ...] = (MemoryStore, SqliteStore, PostgresStore)


def keys(store: RunStore) -> ApiKeyStore:
    assert isinstance(store, ApiKeyStore), f"{type(store).__name__} keeps no API keys"
    return store


def key(key_id: str, tenant: str = "acme", scopes: tuple[str, ...] = ("read",)) -> ApiKeyRecord:
    return ApiKeyRecord(key_id, tenant, f"$argon2id$hash-of-{key_id}", list(scopes), "ci é")


class ApiKeyConformance(StoreTestBase):
    async def test_a_key_round_trips_and_ids_are_unique(
        self, store: RunStore, clock: FakeClock
    ) -> None:
        s = keys(store)
        assert not await s.has_api_keys()
        got = await s.put_api_key(key("k1", scopes=("read", "submit")))
        assert (got.key_id, got.tenant, got.scopes, got.name) == (
            "k1",
            "acme",
            ["read", "submit"],
            "ci é",
        )
        assert (got.created_at, got.revoked_at, got.key_hash) == (T0, None, "$argon2id$hash-of-k1")
        assert await s.get_api_key("k1") == got
        assert await s.get_api_key("nope") is None
        assert await s.has_api_keys()
        with pytest.raises(InvalidInputError, match="exists already"):
            await s.put_api_key(key("k1", tenant="other"))
        assert (await s.get_api_key("k1")) == got

    async def test_list_by_tenant_newest_first_and_revoke_once(
        self, store: RunStore, clock: FakeClock
    ) -> None:
        s = keys(store)
        await s.put_api_key(key("k1"))
        clock.advance(1)
        await s.put_api_key(key("k2", tenant="globex"))
        clock.advance(1)
        await s.put_api_key(key("k3"))
        assert [k.key_id for k in await s.list_api_keys()] == ["k3", "k2", "k1"]
        assert [k.key_id for k in await s.list_api_keys(tenant="acme")] == ["k3", "k1"]
        assert await s.list_api_keys(tenant="nobody") == []
        clock.advance(5)
        revoked = await s.revoke_api_key("k2")
        assert revoked is not None and revoked.revoked_at == T0 + 7
        clock.advance(5)
        again = await s.revoke_api_key("k2")
        assert again is not None and again.revoked_at == T0 + 7
        assert await s.revoke_api_key("nope") is None
        assert await s.has_api_keys()
        await s.revoke_api_key("k1")
        await s.revoke_api_key("k3")
        assert not await s.has_api_keys()
        assert len(await s.list_api_keys()) == 3

    async def test_a_tenant_lists_only_its_runs(self, store: RunStore, clock: FakeClock) -> None:
        for i in range(6):
            await create(store, f"r{i}", tenant="acme" if i % 2 == 0 else "globex")
            clock.advance(1)
        await create(store, "r-none")
        acme = await store.list_runs(tenant="acme")
        assert [r.run_id for r in acme] == ["r4", "r2", "r0"]
        page = await store.list_runs(tenant="globex", limit=2)
        assert [r.run_id for r in page] == ["r5", "r3"]
        rest = await store.list_runs(tenant="globex", limit=2, before="r3")
        assert [r.run_id for r in rest] == ["r1"]
        newer = await store.list_runs(tenant="acme", after="r0", limit=1)
        assert [r.run_id for r in newer] == ["r2"]
        assert await store.list_runs(tenant="nobody") == []
        assert len(await store.list_runs()) == 7
        assert [r.run_id for r in await store.list_runs(tenant="acme", workflow="wf")] == [
            "r4",
            "r2",
            "r0",
        ]
        # another tenant's run is no cursor of acme's listing: as unknown as a made-up id
        # (before, the page came back placed by globex's run, telling acme it exists and when)
        cursors: list[dict[str, Any]] = [{"before": "r3"}, {"after": "r1"}, {"before": "x"}]
        for cursor in cursors:
            with pytest.raises(RunNotFoundError):
                await store.list_runs(tenant="acme", **cursor)
        assert [r.run_id for r in await store.list_runs(before="r3")] == ["r2", "r1", "r0"]

    async def test_a_tenant_lists_only_its_approvals(
        self, store: RunStore, clock: FakeClock
    ) -> None:
        assert isinstance(store, ApprovalStore)
        await create(store, "ra", tenant="acme")
        await create(store, "rg", tenant="globex")
        for aid, run_id in (("a1", "ra"), ("a2", "rg")):
            clock.advance(1)
            await store.create_approval(
                ApprovalRecord(aid, run_id, f"h-{aid}", {"tool": "t"}, "why", {"required": 1})
            )
        assert [a.approval_id for a in await store.list_approvals(tenant="acme")] == ["a1"]
        assert [a.approval_id for a in await store.list_approvals(tenant="globex")] == ["a2"]
        assert await store.list_approvals(tenant="nobody") == []
        assert len(await store.list_approvals()) == 2
        with pytest.raises(ApprovalNotFoundError):  # globex's request is no cursor of acme's
            await store.list_approvals(tenant="acme", before="a2")
        assert await store.list_approvals(tenant="globex", before="a2") == []

    async def test_runs_are_counted_by_status_and_tenant(
        self, store: RunStore, clock: FakeClock
    ) -> None:
        from tether.core.lifecycle import RunStatus
        from tether.store.run_counts import RunCounts

        assert isinstance(store, RunCounts)
        assert await store.count_runs() == {}
        await create(store, "a1", tenant="acme")
        await create(store, "a2", tenant="acme", status=RunStatus.ESCALATED)
        await create(store, "g1", tenant="globex")
        await create(store, "n1")
        assert await store.count_runs() == {"EXECUTING": 3, "ESCALATED": 1}
        assert await store.count_runs(tenant="acme") == {"EXECUTING": 1, "ESCALATED": 1}
        assert await store.count_runs(tenant="nobody") == {}
