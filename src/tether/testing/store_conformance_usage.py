"""Conformance: the usage of a page of runs in one query (``RunUsageTotals.runs_usage``), the
same sums as each run's ``model_usage`` and tool effects; a step's model calls
(``step_model_calls``)."""

from __future__ import annotations

from tether.store.protocol import RunStore
from tether.store.run_usage import RunUsage, RunUsageTotals
from tether.store.types import Commit, Event
from tether.testing.store_helpers import StoreTestBase, create, ev


class UsageConformance(StoreTestBase):
    async def test_runs_usage_sums_a_page_of_runs(self, store: RunStore) -> None:
        assert isinstance(store, RunUsageTotals)
        await create(store, "a", events=[ev("note", input_tokens=99, cost=9)])
        await store.commit(
            "a",
            None,
            Commit(
                events=[
                    ev("model_call", model="m", input_tokens=10, output_tokens=4, cost=0.5),
                    ev("model_call", model="n", input_tokens=2.9, output_tokens="3", cost=None),
                    ev("model_call", input_tokens=True, output_tokens=1, cost=0.25),
                ]
            ),
        )
        await store.record_intent("a", "k1", "tool", {"q": 1})
        await store.record_intent("a", "k2", "tool", {"q": 2})
        await store.record_intent("a", "k3", "model", {"q": 3})  # not a tool call
        await create(store, "b")  # no call at all
        await create(store, "c")
        await store.record_intent("c", "k", "tool", {})
        # a run with more model calls than a page of events
        await create(store, "d")
        bulk = [ev("model_call", model="m", input_tokens=1, output_tokens=2) for _ in range(1200)]
        await store.commit("d", None, Commit(events=bulk))

        got = await store.runs_usage(["a", "b", "c", "d", "nope", "a"])
        assert got == {
            "a": RunUsage(model_calls=3, input_tokens=12, output_tokens=5, cost=0.75, tool_calls=2),
            "c": RunUsage(tool_calls=1),
            "d": RunUsage(model_calls=1200, input_tokens=1200, output_tokens=2400),
        }
        # the same sums as the single-run reads
        models = await store.model_usage("a")
        assert sum(m.input_tokens for m in models) == got["a"].input_tokens
        assert sum(m.cost for m in models) == got["a"].cost
        assert await store.runs_usage([]) == {}

    async def test_runs_usage_of_many_runs(self, store: RunStore) -> None:
        assert isinstance(store, RunUsageTotals)
        ids = [f"r{i:03d}" for i in range(130)]  # more than one padded statement size
        for i, run_id in enumerate(ids):
            await create(store, run_id)
            await store.commit(
                run_id, None, Commit(events=[ev("model_call", model="m", input_tokens=i)])
            )
        got = await store.runs_usage(ids)
        assert sorted(got) == ids
        assert [got[r].input_tokens for r in ids] == list(range(130))
        assert all(got[r].model_calls == 1 and got[r].cost == 0.0 for r in ids)

    async def test_step_model_calls_reads_one_steps_model_call_events(
        self, store: RunStore
    ) -> None:
        await create(store, "a")

        def at(step: int, type_: str, **data: object) -> Event:
            return Event("", 0, type_, 1.5, step, "ask", dict(data))

        await store.commit(
            "a",
            None,
            Commit(
                events=[
                    at(1, "model_call", key="k1", input_tokens=3),
                    at(2, "model_call", key="k2"),
                    at(2, "note", key="k3"),
                    at(2, "model_call", key="k4", error="cut"),
                ]
            ),
        )
        await store.commit("a", None, Commit(events=[at(2, "model_call", key="k5")]))
        await create(store, "b")
        await store.commit("b", None, Commit(events=[at(2, "model_call", key="other")]))

        got = await store.step_model_calls("a", 2)
        assert [(e.run_id, e.type, e.step, e.node) for e in got] == [
            ("a", "model_call", 2, "ask")
        ] * 3
        assert [e.data for e in got] == [
            {"key": "k2"},
            {"key": "k4", "error": "cut"},
            {"key": "k5"},
        ]
        assert [e.seq for e in got] == sorted(e.seq for e in got)
        (one,) = await store.step_model_calls("a", 1)
        assert (one.data, one.ts) == ({"key": "k1", "input_tokens": 3}, 1.5)
        assert await store.step_model_calls("a", 3) == []
        assert await store.step_model_calls("nope", 2) == []  # unknown run: none, no error
