"""Conformance: reads over a big run or many runs: model usage summed by the store, and paging."""

from __future__ import annotations

import pytest

from tether.core.errors import InvalidInputError, RunNotFoundError, StepNotFoundError
from tether.store.protocol import RunStore
from tether.store.types import Commit, RunRecord
from tether.store.usage import ModelCallTotals
from tether.testing.clock import FakeClock
from tether.testing.store_helpers import S, StoreTestBase, checkpoint, create, ev


def _ids(runs: list[RunRecord]) -> list[str]:
    return [r.run_id for r in runs]


class QueryConformance(StoreTestBase):
    async def test_model_usage_sums_every_model_call(self, store: RunStore) -> None:
        await create(store, "r1", events=[ev("note", model="not a call")])
        calls = [
            ev("model_call", model="a", input_tokens=10, output_tokens=2, cost=0.5, latency=1.5,
               ttft=0.25, tpot=0.01),
            ev("model_call", model="a", input_tokens=3, output_tokens=1, cost=None, latency=0.5,
               estimated=True, cache={"hit": True}),
            ev("model_call", model="b", input_tokens=7, output_tokens=0, cost=2, latency=-1,
               ttft="soon", tpot=True),
            ev("model_call", input_tokens=1, output_tokens=1, cost=0.25),
            ev("model_call", model="", input_tokens="12"),
        ]  # fmt: skip
        # more model calls than one page of events holds
        bulk = [ev("model_call", model="a", input_tokens=1, output_tokens=1) for _ in range(1500)]
        await store.commit("r1", None, Commit(events=calls))
        await store.commit("r1", None, Commit(events=bulk))
        got = await store.model_usage("r1")
        assert got == [
            ModelCallTotals("?", calls=2, input_tokens=1, output_tokens=1, cost=0.25,
                            priced_calls=1),
            ModelCallTotals("a", calls=1502, input_tokens=1513, output_tokens=1503, cost=0.5,
                            priced_calls=1, estimated_calls=1, cached_calls=1, latency=2.0,
                            latency_calls=2, max_latency=1.5, ttft=0.25, ttft_calls=1,
                            tpot=0.01, tpot_calls=1),
            ModelCallTotals("b", calls=1, input_tokens=7, cost=2.0, priced_calls=1),
        ]  # fmt: skip

    async def test_model_usage_of_a_run_without_calls(self, store: RunStore) -> None:
        await create(store, "r1", events=[ev("note")])
        assert await store.model_usage("r1") == []
        with pytest.raises(RunNotFoundError):
            await store.model_usage("nope")

    async def test_events_page_through_a_long_log(self, store: RunStore) -> None:
        await create(store, "r1")
        await store.commit("r1", None, Commit(events=[ev("n", i=i) for i in range(2500)]))
        seen: list[int] = []
        after = 0
        while page := await store.list_events("r1", after_seq=after, limit=1000):
            seen += [e.data["i"] for e in page]
            after = page[-1].seq
        assert seen == list(range(2500))

    async def test_list_runs_pages_by_cursor(self, store: RunStore, clock: FakeClock) -> None:
        # 12 runs, two per instant (ties break on run id), statuses and workflows interleaved
        for i in range(12):
            status = S.COMPLETED if i % 3 else S.FAILED
            await create(store, f"r{i:02d}", status=status, workflow=f"wf{i % 2}")
            if i % 2:
                clock.advance(1)
        newest_first = [f"r{i:02d}" for i in reversed(range(12))]
        pages: list[list[str]] = []
        page = await store.list_runs(limit=5)
        while page:
            pages.append(_ids(page))
            page = await store.list_runs(limit=5, before=page[-1].run_id)
        assert pages == [newest_first[0:5], newest_first[5:10], newest_first[10:12]]
        # back towards the newest: the runs just newer than the cursor, newest first
        assert _ids(await store.list_runs(limit=3, after="r05")) == ["r08", "r07", "r06"]
        assert _ids(await store.list_runs(after="r05")) == newest_first[:6]
        assert await store.list_runs(after="r11") == []
        # cursors combine with the filters
        done = [S.COMPLETED]
        want = [r for r in newest_first if int(r[1:]) % 3 and int(r[1:]) % 2 == 0]
        got, cursor = [], None
        while page := await store.list_runs(status=done, workflow="wf0", limit=2, before=cursor):
            got += _ids(page)
            cursor = page[-1].run_id
        assert got == want
        assert _ids(await store.list_runs(status=[S.FAILED], before="r09")) == ["r06", "r03", "r00"]
        # several statuses (merged per status): pages, offsets, a status named twice
        both = [S.FAILED, S.COMPLETED, S.FAILED]
        got, cursor = [], None
        while page := await store.list_runs(status=both, limit=5, before=cursor):
            got += _ids(page)
            cursor = page[-1].run_id
        assert got == newest_first
        assert _ids(await store.list_runs(status=both, limit=4, offset=3)) == newest_first[3:7]
        assert _ids(await store.list_runs(status=both, limit=3, after="r02")) == [
            "r05",
            "r04",
            "r03",
        ]
        mixed = [S.FAILED, S.ESCALATED]
        assert _ids(await store.list_runs(status=mixed, workflow="wf1")) == ["r09", "r03"]

    async def test_list_runs_cursor_mistakes(self, store: RunStore) -> None:
        await create(store, "r1")
        with pytest.raises(RunNotFoundError):
            await store.list_runs(before="gone")
        with pytest.raises(InvalidInputError, match="not both"):
            await store.list_runs(before="r1", after="r1")
        with pytest.raises(InvalidInputError, match="offset"):
            await store.list_runs(before="r1", offset=3)

    async def test_list_checkpoints_limit(self, store: RunStore) -> None:
        await create(store, "r1")
        for step in range(1, 8):
            await store.commit("r1", None, Commit(checkpoint=checkpoint("r1", step)))
        got = await store.list_checkpoints("r1", from_step=3, limit=3)
        assert [c.step for c in got] == [3, 4, 5]
        assert [c.step for c in await store.list_checkpoints("r1", from_step=6, limit=9)] == [6, 7]
        assert await store.list_checkpoints("r1", limit=0) == []
        with pytest.raises(RunNotFoundError):
            await store.list_checkpoints("nope", limit=2)

    async def test_reads_take_whole_numbers_and_any_size(self, store: RunStore) -> None:
        """Each backend took a different wrong turn on these: SQLite raised OverflowError and
        IntegrityError, Postgres NumericValueOutOfRange or read ``True`` as a bigint mistake,
        memory a TypeError, and a negative offset listed every run on SQLite, none in memory."""
        await create(store, "r1", events=[ev("a"), ev("b")])
        for step in (1, 2):
            await store.commit("r1", None, Commit(checkpoint=checkpoint("r1", step)))
        huge = 10**20
        # a count larger than any store holds means all; a position past any means the end
        assert _ids(await store.list_runs(limit=huge)) == ["r1"]
        assert await store.list_runs(offset=huge) == []
        assert [e.seq for e in await store.list_events("r1", limit=huge)] == [1, 2]
        assert await store.list_events("r1", after_seq=huge) == []
        assert [e.seq for e in await store.list_events("r1", after_seq=-huge)] == [1, 2]
        assert [c.step for c in await store.list_checkpoints("r1", limit=huge)] == [0, 1, 2]
        assert await store.list_checkpoints("r1", from_step=huge) == []
        assert [c.step for c in await store.list_checkpoints("r1", to_step=huge)] == [0, 1, 2]
        with pytest.raises(StepNotFoundError, match=str(huge)):
            await store.load_chain("r1", huge)
        with pytest.raises(RunNotFoundError):
            await store.load_chain("nope", huge)
        with pytest.raises(InvalidInputError, match="offset must be >= 0"):
            await store.list_runs(offset=-1)
        assert await store.list_runs(limit=-1) == []
        for bad in ("5", 2.5, True, None):
            with pytest.raises(InvalidInputError, match="limit must be a whole number"):
                await store.list_runs(limit=bad)  # type: ignore[arg-type]
            with pytest.raises(InvalidInputError, match="limit must be a whole number"):
                await store.list_events("r1", limit=bad)  # type: ignore[arg-type]
        for call in (
            lambda: store.list_runs(offset="1"),  # type: ignore[arg-type]
            lambda: store.list_events("r1", after_seq=0.5),  # type: ignore[arg-type]
            lambda: store.list_checkpoints("r1", from_step="0"),  # type: ignore[arg-type]
            lambda: store.list_checkpoints("r1", limit=False),
            lambda: store.load_chain("r1", "2"),  # type: ignore[arg-type]
        ):
            with pytest.raises(InvalidInputError, match="must be a whole number"):
                await call()
