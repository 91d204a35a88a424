"""Conformance: purging finished runs by whole families, page by page (``store.purge``)."""

from __future__ import annotations

import pytest

from tether.store.protocol import RunStore
from tether.store.types import NodeWrite
from tether.testing.clock import FakeClock
from tether.testing.store_helpers import T0, S, StoreTestBase, create


async def _ids(store: RunStore) -> list[str]:
    return sorted(r.run_id for r in await store.list_runs(limit=1000))


class PurgeConformance(StoreTestBase):
    async def test_purge_runs(self, store: RunStore, clock: FakeClock) -> None:
        for run_id, status in [
            ("done", S.COMPLETED),
            ("failed", S.FAILED),
            ("gone", S.CANCELLED),
            ("active", S.EXECUTING),
            ("parked", S.ESCALATED),
        ]:
            await create(store, run_id, status=status)
        await store.put_node_write(None, NodeWrite("done", 1, "t", "a", "done", {}))
        await store.record_intent("done", "k", "tool", {})
        clock.advance(100)
        await create(store, "recent", status=S.COMPLETED)
        assert await store.purge_runs(T0 + 50, dry_run=True) == 3
        assert len(await _ids(store)) == 6  # a dry run deletes nothing
        assert await store.purge_runs(T0 + 50) == 3
        assert await _ids(store) == ["active", "parked", "recent"]
        assert await store.get_node_writes("done", 1) == []
        assert await store.list_effects("done") == []
        assert await store.purge_runs(T0 + 50) == 0

    async def test_a_finished_child_of_a_parked_parent_is_kept(
        self, store: RunStore, clock: FakeClock
    ) -> None:
        """The parked parent re-runs the node that started its children: a purged child would
        be started again and repeat its effects."""
        await create(store, "parent", status=S.ESCALATED)
        await create(store, "parent/charge", status=S.COMPLETED, parent_run_id="parent")
        await create(store, "parent/fork", status=S.FAILED, parent_run_id="parent")
        await store.record_intent("parent/charge", "charge:1234", "tool", {"order": "1234"})
        clock.advance(100)
        assert await store.purge_runs(T0 + 50) == 0
        assert await _ids(store) == ["parent", "parent/charge", "parent/fork"]
        assert len(await store.list_effects("parent/charge")) == 1

    async def test_a_family_goes_whole_once_every_run_of_it_is_old(
        self, store: RunStore, clock: FakeClock
    ) -> None:
        await create(store, "root", status=S.COMPLETED)
        await create(store, "root/a", status=S.COMPLETED, parent_run_id="root")
        await create(store, "root/a/deep", status=S.CANCELLED, parent_run_id="root/a")
        clock.advance(100)
        await create(store, "root/late", status=S.COMPLETED, parent_run_id="root")  # recent
        assert await store.purge_runs(T0 + 50) == 0  # one member is too recent: all stay
        assert len(await _ids(store)) == 4
        assert await store.purge_runs(T0 + 150, dry_run=True) == 4
        assert await store.purge_runs(T0 + 150) == 4
        assert await _ids(store) == []

    async def test_a_run_whose_parent_is_gone_is_a_root(
        self, store: RunStore, clock: FakeClock
    ) -> None:
        await create(store, "orphan", status=S.COMPLETED, parent_run_id="deleted-by-hand")
        await create(store, "orphan/child", status=S.ESCALATED, parent_run_id="orphan")
        await create(store, "lone", status=S.FAILED, parent_run_id="also-gone")
        clock.advance(100)
        assert await store.purge_runs(T0 + 50) == 1
        assert await _ids(store) == ["orphan", "orphan/child"]

    async def test_purges_a_backlog_page_by_page(self, store: RunStore, clock: FakeClock) -> None:
        for i in range(25):
            await create(store, f"old-{i:02d}", status=S.COMPLETED)
            await create(
                store, f"old-{i:02d}/kid", status=S.COMPLETED, parent_run_id=f"old-{i:02d}"
            )
            if i % 5 == 0:  # every fifth family keeps a parked member: it stays whole
                await create(
                    store, f"old-{i:02d}/wait", status=S.ESCALATED, parent_run_id=f"old-{i:02d}"
                )
        clock.advance(100)
        await create(store, "fresh", status=S.COMPLETED)
        assert await store.purge_runs(clock.now() - 50, batch=4) == 40
        left = await _ids(store)  # created in one instant: the pages part on run ids
        kept = {f"old-{i:02d}" for i in range(0, 25, 5)}
        assert sorted(r for r in left if r != "fresh") == sorted(
            f"{root}{tail}" for root in kept for tail in ("", "/kid", "/wait")
        )
        assert "fresh" in left

    async def test_purge_refuses_a_page_size_below_one(self, store: RunStore) -> None:
        with pytest.raises(ValueError, match="batch"):
            await store.purge_runs(T0, batch=0)
