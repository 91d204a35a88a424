"""Conformance: audit chain rows and message nonces (``tether.store.audit``).

The store keeps rows and refuses a second row at a taken ``(tenant, seq)``; hashing is
governance's business, so the rows here carry made-up hashes. Racing writers are separate
store instances on one database (the in-memory store hands back the same instance).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest

from tether.core.errors import InvalidInputError
from tether.store.audit import AuditRow, AuditStore
from tether.store.protocol import RunStore
from tether.testing.store_helpers import T0, StoreFactory, StoreTestBase

if TYPE_CHECKING:  # every backend satisfies AuditStore statically too (checked by mypy)
    from tether.store.memory import MemoryStore
    from tether.store.postgres import PostgresStore
    from tether.store.sqlite import SqliteStore

    _BACKENDS: tuple[type[AuditStore], ...] = (MemoryStore, SqliteStore, PostgresStore)


def audits(store: RunStore) -> AuditStore:
    assert isinstance(store, AuditStore), f"{type(store).__name__} keeps no audit log"
    return store


def row(
    tenant: str, seq: int, run_id: str | None = "r1", ts: float = T0, kind: str = "k"
) -> AuditRow:
    data = '{"n":' + str(seq) + ',"text":"caf\\u00e9 \\u0000"}'
    return AuditRow(tenant, seq, ts + seq, run_id, kind, data, f"p{seq - 1}", f"h{seq}")


class AuditConformance(StoreTestBase):
    async def test_a_position_is_taken_once_and_rows_read_back_intact(
        self, store: RunStore
    ) -> None:
        a = audits(store)
        assert await a.audit_head("t1") is None
        assert await a.append_audit(row("t1", 1))
        assert not await a.append_audit(row("t1", 1, kind="other"))  # taken: nothing changes
        assert await a.append_audit(row("t1", 2))
        assert await a.append_audit(row("t2", 1))  # another tenant's chain
        assert await a.audit_head("t1") == row("t1", 2)
        got = await a.list_audit("t1")
        assert got == [row("t1", 1), row("t1", 2)]
        assert got[0].data == {"n": 1, "text": "café \x00"}
        assert await a.audit_tenants() == ["t1", "t2"]

    async def test_listing_filters_and_pages_by_tenant_and_seq(self, store: RunStore) -> None:
        a = audits(store)
        for seq in range(1, 6):
            assert await a.append_audit(row("", seq, run_id="r1" if seq % 2 else "r2"))
            assert await a.append_audit(row("acme", seq))
        assert [(r.tenant, r.seq) for r in await a.list_audit(limit=3)] == [
            ("", 1),
            ("", 2),
            ("", 3),
        ]
        page2 = await a.list_audit(after=("", 5), limit=2)
        assert [(r.tenant, r.seq) for r in page2] == [("acme", 1), ("acme", 2)]
        assert [r.seq for r in await a.list_audit("", run_id="r2")] == [2, 4]
        assert [r.seq for r in await a.list_audit("acme", since=T0 + 4)] == [4, 5]
        assert [r.seq for r in await a.list_audit("acme", after=("acme", 3))] == [4, 5]
        assert await a.list_audit("nobody") == []
        assert await a.list_audit(limit=0) == []
        assert len(await a.list_audit(limit=10**20)) == 10  # larger than any store binds: all
        with pytest.raises(InvalidInputError, match="limit must be a whole number"):
            await a.list_audit(limit="10")  # type: ignore[arg-type]

    async def test_racing_writers_of_one_position_get_exactly_one_row(
        self, store_factory: StoreFactory
    ) -> None:
        stores = [audits(await store_factory()) for _ in range(3)]
        for seq in range(1, 21):
            won = await asyncio.gather(
                *(s.append_audit(row("t", seq, kind=f"w{i}")) for i, s in enumerate(stores))
            )
            assert sum(won) == 1
        assert [r.seq for r in await stores[0].list_audit("t")] == list(range(1, 21))

    async def test_a_nonce_belongs_to_its_first_consumer(self, store: RunStore) -> None:
        a = audits(store)
        assert await a.claim_message_nonce("n1", "run-a", "planner", T0) == "run-a"
        assert await a.claim_message_nonce("n1", "run-a", "planner", T0 + 1) == "run-a"
        assert await a.claim_message_nonce("n1", "run-b", "planner", T0 + 2) == "run-a"
        assert await a.claim_message_nonce("n2", "run-b", "planner", T0) == "run-b"
