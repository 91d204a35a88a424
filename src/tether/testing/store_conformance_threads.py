"""Conformance: a run's thread (``RunRecord.thread_id``) and ``list_runs(thread_id=...)``."""

from __future__ import annotations

from tether.store.protocol import RunStore
from tether.store.types import Commit, RunRecord
from tether.testing.clock import FakeClock
from tether.testing.store_helpers import S, StoreTestBase, checkpoint, create


def _ids(runs: list[RunRecord]) -> list[str]:
    return [r.run_id for r in runs]


class ThreadConformance(StoreTestBase):
    async def test_thread_id_is_stored_and_kept(self, store: RunStore) -> None:
        rec = await create(store, "t1", thread_id="chat")
        assert rec.thread_id == "chat"
        assert (await store.get_run("t1")).thread_id == "chat"
        assert (await create(store, "plain")).thread_id is None
        # a commit (fenced, with or without the writer's copy, metadata replaced) keeps it
        after = await store.commit(
            "t1", rec.lease_token, Commit(checkpoint=checkpoint("t1", 1), metadata={"k": 1})
        )
        assert after.thread_id == "chat"
        after = await store.commit(
            "t1", rec.lease_token, Commit(checkpoint=checkpoint("t1", 2), base=after)
        )
        assert after.thread_id == "chat"
        done = await store.commit(
            "t1",
            None,
            Commit(status=S.CANCELLED, transitions=[(S.EXECUTING, S.CANCELLED, "u", "")]),
        )
        assert done.thread_id == "chat"
        assert (await store.get_run("t1")).thread_id == "chat"
        assert _ids(await store.list_runs(thread_id="chat")) == ["t1"]

    async def test_list_runs_by_thread(self, store: RunStore, clock: FakeClock) -> None:
        # three threads interleaved with unthreaded runs, two runs per instant (ties on run id)
        for i in range(15):
            thread = ["a", "b", None][i % 3]
            status = S.COMPLETED if i % 2 else S.FAILED
            await create(store, f"r{i:02d}", status=status, workflow=f"wf{i % 2}", thread_id=thread)
            if i % 2:
                clock.advance(1)
        a = [f"r{i:02d}" for i in reversed(range(15)) if i % 3 == 0]
        assert _ids(await store.list_runs(thread_id="a")) == a
        assert _ids(await store.list_runs(thread_id="b", limit=2)) == ["r13", "r10"]
        assert _ids(await store.list_runs(thread_id="a", limit=2, offset=1)) == a[1:3]
        assert await store.list_runs(thread_id="nobody") == []
        # cursors page through one thread, in both directions
        pages, page = [], await store.list_runs(thread_id="a", limit=2)
        while page:
            pages.append(_ids(page))
            page = await store.list_runs(thread_id="a", limit=2, before=page[-1].run_id)
        assert pages == [a[0:2], a[2:4], a[4:5]]
        assert _ids(await store.list_runs(thread_id="a", limit=2, after="r03")) == ["r09", "r06"]
        assert _ids(await store.list_runs(thread_id="a", after="r03")) == a[:3]
        # a cursor from another thread (or none) positions the page by its time all the same
        assert _ids(await store.list_runs(thread_id="a", before="r07")) == ["r06", "r03", "r00"]
        # combined with the other filters
        assert _ids(await store.list_runs(thread_id="a", status=[S.FAILED])) == [
            "r12",
            "r06",
            "r00",
        ]
        both = [S.COMPLETED, S.FAILED]
        assert _ids(await store.list_runs(thread_id="a", status=both, limit=3)) == a[:3]
        assert _ids(await store.list_runs(thread_id="b", workflow="wf1")) == ["r13", "r07", "r01"]
        assert _ids(
            await store.list_runs(thread_id="b", workflow="wf0", status=[S.FAILED], before="r10")
        ) == ["r04"]
