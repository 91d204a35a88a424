"""Conformance: the evaluation log (``tether.store.evaluation_log``): the shadow log and run
flags, on every backend."""

from __future__ import annotations

import asyncio

import pytest

from tether.core.errors import InvalidInputError
from tether.core.lifecycle import RunStatus
from tether.store.evaluation_log import EvaluationLogStore, FlagRow, ShadowRow
from tether.store.kpi_totals import python_totals
from tether.store.protocol import RunStore
from tether.store.types import Commit, Event
from tether.testing.clock import FakeClock
from tether.testing.store_helpers import T0, StoreFactory, StoreTestBase, create

S = RunStatus


def model_call(run_id: str, data: dict[str, object]) -> Event:
    return Event(run_id, 0, "model_call", T0, 1, "agent", data)


def logs(store: RunStore) -> EvaluationLogStore:
    assert isinstance(store, EvaluationLogStore), f"{type(store).__name__} has no evaluation log"
    return store


def shadow(
    run_id: str, key: str, ts: float, distance: float | None, *, workflow: str = "wf"
) -> ShadowRow:
    failed = distance is None
    return ShadowRow(
        run_id,
        key,
        workflow,
        ts,
        "scripted:a",
        "scripted:b",
        {"text": "hi", "tool_calls": [{"name": "search", "arguments": {"q": "x"}}]},
        None if failed else {"text": "hello", "tool_calls": []},
        distance,
        None if failed else distance == 0.0,
        "ModelError: boom" if failed else None,
    )


class EvaluationLogConformance(StoreTestBase):
    async def test_shadow_rows_round_trip_once_per_key(self, store: RunStore) -> None:
        log = logs(store)
        row = shadow("r1", "k1", T0, 0.25)
        assert await log.put_shadow(row) is True
        again = shadow("r1", "k1", T0 + 5, 0.9)
        assert await log.put_shadow(again) is False  # a re-run node changes nothing
        assert await log.put_shadow(shadow("r1", "k0", T0 + 1, None)) is True
        got = await log.list_shadow("wf")
        assert [(r.call_key, r.distance) for r in got] == [("k1", 0.25), ("k0", None)]
        assert got[0] == row
        assert got[1].shadow is None and got[1].tool_agrees is None
        assert got[1].error == "ModelError: boom"
        assert await log.list_shadow("other") == []
        assert [r.call_key for r in await log.list_shadow(run_id="r1", since=T0 + 0.5)] == ["k0"]

    async def test_shadow_pages_by_cursor(self, store: RunStore) -> None:
        log = logs(store)
        for i in range(5):
            await log.put_shadow(shadow(f"r{i % 2}", f"k{i}", T0 + i // 2, 0.1 * i))
        first = await log.list_shadow("wf", limit=2)
        last = first[-1]
        rest = await log.list_shadow("wf", after=(last.ts, last.run_id, last.call_key), limit=10)
        keys = [r.call_key for r in first + rest]
        assert sorted(keys) == [f"k{i}" for i in range(5)] and len(set(keys)) == 5
        assert [r.ts for r in first + rest] == sorted(r.ts for r in first + rest)
        assert await log.list_shadow("wf", limit=0) == []
        assert len(await log.list_shadow("wf", limit=10**20)) == 5
        assert await log.list_flags(limit=10**20) == []
        for bad in ("10", 2.5):
            with pytest.raises(InvalidInputError, match="limit must be a whole number"):
                await log.list_shadow("wf", limit=bad)  # type: ignore[arg-type]
            with pytest.raises(InvalidInputError, match="limit must be a whole number"):
                await log.list_flags(limit=bad)  # type: ignore[arg-type]

    async def test_shadow_totals_sum_in_the_database(self, store: RunStore) -> None:
        log = logs(store)
        # distances 0.0, 0.05, 0.2, 0.5 and one failed call; another workflow's row
        for i, d in enumerate([0.0, 0.05, 0.2, 0.5, None]):
            await log.put_shadow(shadow("r1", f"k{i}", T0 + i, d))
        await log.put_shadow(shadow("r2", "k9", T0, 0.99, workflow="other"))
        t = await log.shadow_totals("wf", threshold=0.1)
        assert (t.samples, t.failed, t.compared) == (5, 1, 4)
        assert abs(t.distance_sum - 0.75) < 1e-9 and abs(t.max_distance - 0.5) < 1e-9
        assert t.above == 2  # 0.2 and 0.5 are above 0.1
        assert t.tool_mismatches == 3  # tool_agrees is False for every non-zero distance
        # nearest rank of p95 among 4 values: ceil(0.95 * 4) = 4 -> the 4th smallest, 0.5
        assert t.p95_distance == 0.5
        late = await log.shadow_totals("wf", threshold=0.1, since=T0 + 2)
        assert (late.samples, late.compared, late.p95_distance) == (3, 2, 0.5)
        empty = await log.shadow_totals("nobody", threshold=0.1)
        assert (empty.samples, empty.p95_distance) == (0, None)

    async def test_flags_replace_by_key_and_filter(self, store: RunStore) -> None:
        log = logs(store)
        f = FlagRow("r1", "drift.goal_output", "final", "wf", T0, 0.41, 0.7, {"goal": "g"})
        await log.put_flag(f)
        await log.put_flag(FlagRow("r1", "drift.plan", "1", "wf", T0 + 1, 0.2, 0.7))
        await log.put_flag(FlagRow("r2", "drift.plan", "1", "wf2", T0 + 2, 0.3, 0.7))
        assert await log.list_flags(run_id="r1") == [
            f,
            FlagRow("r1", "drift.plan", "1", "wf", T0 + 1, 0.2, 0.7, {}),
        ]
        # the same flag checked again replaces the first
        await log.put_flag(
            FlagRow("r1", "drift.goal_output", "final", "wf", T0 + 3, 0.5, 0.7, {"n": 2})
        )
        got = await log.list_flags(run_id="r1", kind="drift.goal_output")
        assert [(r.score, r.data) for r in got] == [(0.5, {"n": 2})]
        assert [r.run_id for r in await log.list_flags(workflow="wf2")] == ["r2"]
        assert [r.run_id for r in await log.list_flags(since=T0 + 2)] == ["r2", "r1"]
        assert len(await log.list_flags(limit=1)) == 1

    async def test_concurrent_shadow_writers_keep_one_row(
        self, store_factory: StoreFactory
    ) -> None:
        stores = [logs(await store_factory()) for _ in range(3)]
        won = await asyncio.gather(
            *(s.put_shadow(shadow("r1", "same", T0, 0.1 * i)) for i, s in enumerate(stores))
        )
        assert sorted(won) == [False, False, True]
        assert len(await stores[0].list_shadow("wf")) == 1

    async def test_kpi_totals_of_many_runs(self, store: RunStore, clock: FakeClock) -> None:
        log = logs(store)
        calls = [
            model_call("r1", {"model": "m", "input_tokens": 10, "output_tokens": 5, "cost": 0.5}),
            model_call("r1", {"model": "m", "input_tokens": 7.9, "output_tokens": "x"}),
            model_call("r1", {"model": "n", "input_tokens": 3, "output_tokens": 2, "cost": None}),
            Event("r1", 0, "tool_call", T0, 1, "agent", {"tool": "t", "ok": True, "error": None}),
            Event(
                "r1", 0, "tool_call", T0, 1, "agent", {"ok": False, "error": "ToolArgumentsError"}
            ),
            Event("r1", 0, "tool_call", T0, 1, "agent", {"ok": False, "error": "ToolTimeoutError"}),
        ]
        await create(store, "r1", status=S.EXECUTING, events=calls)  # at T0: RECEIVED..EXECUTING
        await create(store, "r2", status=S.EXECUTING)
        hops = [  # r1: 2 s EXECUTING, 1 s VALIDATING (sent back), 3 s EXECUTING, 1 s VALIDATING
            (2.0, S.VALIDATING), (1.0, S.EXECUTING), (3.0, S.VALIDATING), (1.0, S.COMPLETED),
        ]  # fmt: skip
        cur = S.EXECUTING
        for secs, dst in hops:
            clock.advance(secs)
            await store.commit("r1", None, Commit(status=dst, transitions=[(cur, dst, "w", "")]))
            cur = dst
        clock.advance(4.0)  # r2: 4 s EXECUTING, escalated, cancelled 5 s later
        await store.commit(
            "r2",
            None,
            Commit(status=S.ESCALATED, transitions=[(S.EXECUTING, S.ESCALATED, "w", "")]),
        )
        clock.advance(5.0)
        await store.commit(
            "r2",
            None,
            Commit(status=S.CANCELLED, transitions=[(S.ESCALATED, S.CANCELLED, "w", "")]),
        )
        got = await log.kpi_totals(["r1", "r2", "nope", "r1"])
        assert set(got) == {"r1", "r2"}
        r1, r2 = got["r1"], got["r2"]
        # tokens: numbers only, truncated (7.9 -> 7); cost: numbers only
        assert (r1.model_calls, r1.input_tokens, r1.output_tokens) == (3, 20, 7)
        assert r1.cost == pytest.approx(0.5)
        assert (r1.tool_events, r1.tool_argument_errors) == (3, 1)
        assert (r2.tool_events, r2.tool_argument_errors) == (0, 0)
        # out of VALIDATING twice (not to CANCELLED); once back to EXECUTING: a failed one
        assert (r1.validations, r1.validation_failures, r1.escalations) == (2, 1, 0)
        assert r1.phase_seconds == pytest.approx(
            {"RECEIVED": 0.0, "PLANNED": 0.0, "EXECUTING": 5.0, "VALIDATING": 2.0}
        )
        assert (r1.first_ts, r1.last_ts) == (T0, T0 + 7.0)
        assert (r2.model_calls, r2.escalations, r2.validations) == (0, 1, 0)
        assert r2.phase_seconds == pytest.approx(
            {"RECEIVED": 0.0, "PLANNED": 0.0, "EXECUTING": 11.0, "ESCALATED": 5.0}
        )
        # the same sums as the run's own reads
        for run_id, t in got.items():
            own = python_totals(
                run_id, await store.list_transitions(run_id), await store.model_usage(run_id)
            )
            assert own.phase_seconds == pytest.approx(t.phase_seconds)
            assert (own.model_calls, own.input_tokens, own.escalations, own.validations) == (
                t.model_calls, t.input_tokens, t.escalations, t.validations
            )  # fmt: skip
        assert await log.kpi_totals([]) == {}
        with pytest.raises(InvalidInputError):
            await log.kpi_totals([f"r{i}" for i in range(300)])
