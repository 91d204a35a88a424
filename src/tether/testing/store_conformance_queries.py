"""Conformance: reads over a big run or many runs: model usage summed by the store, and paging."""

from __future__ import annotations

import pytest

from tether.core.errors import RunNotFoundError
from tether.store.protocol import RunStore
from tether.store.types import Commit
from tether.store.usage import ModelCallTotals
from tether.testing.store_helpers import StoreTestBase, create, ev


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
