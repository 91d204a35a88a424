"""KPIs on scripted runs whose right answers are worked out by hand below, on the memory and
SQLite stores (SQLite sums tokens and cost in SQL)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tether import Runtime
from tether.core.errors import InvalidInputError
from tether.evaluation import kpi_metrics, kpis, run_kpis
from tether.store.memory import MemoryStore
from tether.store.protocol import RunStore
from tether.store.sqlite import SqliteStore
from tether.testing import FakeClock

from .agents import build, quick_model, thorough_model

T0 = 1_700_000_000.0
Q = {"question": "How much did Tether raise?"}


async def scripted_runs(store: RunStore, clock: FakeClock) -> tuple[str, str, str]:
    """Run 1 (research, t=0): completes after 2 + 5 + 1 s. Run 2 (research, t=8): a human
    review escalates it at t=16, cancelled at t=26. Run 3 (other workflow, t=126)."""
    async with Runtime(store, clock=clock) as rt:
        one = await rt.run(build(thorough_model(), clock), Q)
        assert one.completed
        two = await rt.run(build(quick_model(), clock, review=True), Q)
        assert two.status.value == "ESCALATED"
        clock.advance(10.0)
        await rt.cancel(two.run_id, reason="nobody reviewed it")
        clock.advance(100.0)
        three = await rt.run(build(quick_model(), clock, name="other"), Q)
        assert three.completed
    return one.run_id, two.run_id, three.run_id


@pytest.fixture(params=["memory", "sqlite"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[RunStore]:
    """A store holding the three scripted runs (SQLite: reopened after the runtime closed)."""
    clock = FakeClock(T0)
    if request.param == "memory":
        memory = MemoryStore(clock)
        await scripted_runs(memory, clock)
        yield memory
        return
    path = tmp_path / "kpi.db"
    await scripted_runs(SqliteStore(path, clock=clock), clock)
    reopened = SqliteStore(path, clock=clock)
    await reopened.setup()
    yield reopened
    await reopened.close()


async def ids(store: RunStore) -> list[str]:
    """The run ids, oldest first."""
    return [r.run_id for r in reversed(await store.list_runs())]


async def test_one_run_by_hand(store: RunStore) -> None:
    one, two, _ = await ids(store)
    k = await run_kpis(store, one)
    # plan [search, fetch, summarize]; executed after it: search, fetch -> 2 of 3
    assert (k.planned_steps, k.executed_planned) == (3, 2)
    assert k.plan_fidelity == pytest.approx(2 / 3)
    # 2 tool calls; the answer repeats the search's 42 and "series", nothing of fetch's -> 1/2
    assert (k.tool_calls, k.tools_used_later, k.tool_utility) == (2, 1, 0.5)
    # 4 model calls (plan, search call, fetch call, answer) / 2 tool calls
    assert (k.model_calls, k.thought_to_action) == (4, 2.0)
    # tokens 10+30+40+50 in, 20+5+5+15 out; cost 4 x 0.001
    assert (k.input_tokens, k.output_tokens, k.tokens) == (130, 45, 175)
    assert k.cost == pytest.approx(0.004)
    # RECEIVED, PLANNED at t=0; EXECUTING 0->2 (plan); WAITING_FOR_TOOL 2->7 (agent);
    # VALIDATING 7->8 (check) -> COMPLETED
    assert k.phase_seconds == {
        "RECEIVED": 0.0, "PLANNED": 0.0, "EXECUTING": 2.0, "WAITING_FOR_TOOL": 5.0,
        "VALIDATING": 1.0,
    }  # fmt: skip
    assert (k.validations, k.validation_failures, k.escalations, k.latency) == (1, 0, 0, 8.0)

    k2 = await run_kpis(store, two)
    # plan [search, summarize], search executed -> 1/2; the answer says 42 -> 1/1 used
    assert (k2.plan_fidelity, k2.tool_utility, k2.thought_to_action) == (0.5, 1.0, 3.0)
    assert k2.tokens == 60 + 25
    # VALIDATING -> ESCALATED is a failed validation; 10 s ESCALATED; done at t=26-8=18
    assert (k2.validations, k2.validation_failures, k2.escalations) == (1, 1, 1)
    assert k2.phase_seconds["ESCALATED"] == 10.0 and k2.latency == 18.0
    assert k2.status == "CANCELLED"


async def test_aggregate_per_workflow_and_period(store: RunStore) -> None:
    report = await kpis(store, workflow="research")
    s = report.by_workflow["research"]
    assert set(report.by_workflow) == {"research"} and s.runs == 2
    # pooled: planned 3 + 2, executed 2 + 1
    assert s.plan_fidelity == pytest.approx(3 / 5)
    # tools used later 1 + 1 of 2 + 1 calls; model calls 4 + 3 over 3 tool calls
    assert s.tool_utility == pytest.approx(2 / 3)
    assert s.thought_to_action == pytest.approx(7 / 3)
    # all tokens (175 + 85) and cost (0.004 + 0.003) over the 1 completed run
    assert s.tokens_per_completed_task == 260.0
    assert s.cost_per_completed_task == pytest.approx(0.007)
    # 1 failed validation of 2; 1 escalated run of 2
    assert (s.validation_failure_rate, s.escalation_rate) == (0.5, 0.5)
    # latencies [8, 18]: p50 nearest rank ceil(0.5*2)=1 -> 8; p95 ceil(1.9)=2 -> 18
    assert (s.latency_p50, s.latency_p95) == (8.0, 18.0)
    assert s.phase_seconds["WAITING_FOR_TOOL"] == 10.0  # 5 + 5
    assert s.phase_seconds["ESCALATED"] == 10.0

    everything = await kpis(store)
    assert set(everything.by_workflow) == {"research", "other"}
    assert everything.overall.runs == 3 and everything.overall.completed == 2
    # tokens 175 + 85 + 85 over 2 completed runs
    assert everything.overall.tokens_per_completed_task == 345 / 2
    # the period: run 3 started at t=126, the others before
    late = await kpis(store, since=T0 + 100)
    assert [r.workflow for r in late.runs] == ["other"]
    early = await kpis(store, until=T0 + 100)
    assert sorted(r.workflow for r in early.runs) == ["research", "research"]
    assert len((await kpis(store, max_runs=1)).runs) == 1
    with pytest.raises(InvalidInputError):
        await kpis(store, since=T0 + 5, until=T0)
    # a NaN bound compared false with every run (since=nan took them all), inf took none
    for bound in (float("nan"), float("inf"), float("-inf")):
        with pytest.raises(InvalidInputError, match="must be finite Unix seconds"):
            await kpis(store, since=bound)
        with pytest.raises(InvalidInputError, match="must be finite Unix seconds"):
            await kpis(store, until=bound)


async def test_metrics_text_for_the_server(store: RunStore) -> None:
    text = await kpi_metrics(store)
    assert "# TYPE tether_kpi_plan_fidelity gauge" in text
    assert 'tether_kpi_plan_fidelity{workflow="research"} 0.6' in text
    assert 'tether_kpi_escalation_rate{workflow="research"} 0.5' in text
    assert 'tether_kpi_phase_seconds{workflow="research",phase="ESCALATED"} 10.0' in text
    assert 'tether_kpi_runs{workflow="other"} 1.0' in text
    assert await kpi_metrics(MemoryStore()) == ""


async def test_an_unfinished_run_counts_its_open_phase_only_when_asked() -> None:
    clock = FakeClock(T0)
    store = MemoryStore(clock)
    async with Runtime(store, clock=clock) as rt:
        parked = await rt.run(build(quick_model(), clock, review=True), Q)
    # escalated at t=8 (2 + 5 + 1 s of nodes): 30 s later it is still waiting for a human
    k = await run_kpis(store, parked.run_id, now=T0 + 38.0)
    assert k.phase_seconds["ESCALATED"] == 30.0 and k.latency is None
    assert "ESCALATED" not in (await run_kpis(store, parked.run_id)).phase_seconds
    summary = (await kpis(store, now=T0 + 38.0)).overall
    assert (summary.latency_p50, summary.escalation_rate) == (None, 1.0)


async def test_tool_calls_refused_for_their_arguments() -> None:
    from typing import Any, TypedDict

    from tether import END, START, Graph, RunContext
    from tether.tools import ToolExecutor

    from .agents import search

    tools = ToolExecutor([search])

    class S(TypedDict, total=False):
        ok: bool

    async def node(state: S, ctx: RunContext) -> dict[str, Any]:
        bad = await tools.call("search", {"query": "no such argument"}, ctx=ctx)
        good = await tools.call("search", {"q": "tether"}, ctx=ctx)
        return {"ok": good.ok and not bad.ok}

    g = Graph(S, name="args")
    g.add_node("n", node)
    g.add_edge(START, "n")
    g.add_edge("n", END)
    store = MemoryStore()
    async with Runtime(store) as rt:
        assert (await rt.run(g.compile(), {})).state["ok"]
    s = (await kpis(store)).overall
    # 2 calls answered (tool_call events), 1 refused for its arguments; only 1 journaled
    assert (s.tool_events, s.tool_argument_errors, s.tool_argument_failure_rate) == (2, 1, 0.5)
    assert s.tool_calls == 1
