"""Tenant quotas: tokens, cost and runs per period window, shared by a tenant's runs and their
child runs; a run over quota parks ESCALATED (kind ``quota``) and goes on once the window
rolled over."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.governance import budget_app as app
from tests.governance.budget_app import CALL_COST, IN, OUT
from tether import END, START, Graph, RunContext, RunStatus, Runtime
from tether.core.errors import ConfigurationError
from tether.governance import Budget, Governance, Quota
from tether.store.budget import BudgetStore
from tether.store.memory import MemoryStore
from tether.store.sqlite import SqliteStore
from tether.testing import FakeClock

TOK = IN + OUT


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=3600.0 * 1000)  # on an hour boundary


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock) -> Any:
    if request.param == "memory":
        return MemoryStore(clock)
    return SqliteStore(tmp_path / "q.db", clock=clock)


async def test_a_tenant_over_its_token_quota_waits_for_the_next_window(
    store: Any, clock: FakeClock
) -> None:
    wf = app.build(None, Quota(period="hour", tokens=100), name="quota_tokens")
    async with Runtime(store, clock=clock) as rt:
        first = await rt.run(wf, {"turns": 4}, tenant="acme")  # 4 calls: 60 tokens
        assert first.status is RunStatus.COMPLETED
        second = await rt.run(wf, {"turns": 4}, tenant="acme")
        assert second.status is RunStatus.ESCALATED
        esc = second.escalation
        assert esc is not None and esc["kind"] == "quota"
        assert esc["details"]["dimension"] == "tokens" and esc["details"]["limit"] == 100
        other = await rt.run(wf, {"turns": 4}, tenant="globex")  # its own window
        assert other.status is RunStatus.COMPLETED
        assert isinstance(rt.store, BudgetStore)
        (window,) = await rt.store.list_ledgers("quota:acme:")
        assert window.used["tokens"] <= 100 + TOK and window.reserved["tokens"] == 0
        assert window.used["tokens"] == TOK * 6  # two calls of the second run fitted
        # still the same hour: resuming trips again; an hour later the new window admits it
        again = await rt.wait((await rt.resume(second.run_id)).run_id)
        assert again.status is RunStatus.ESCALATED
        clock.advance(3600)
        done = await rt.wait((await rt.resume(second.run_id)).run_id)
        assert done.status is RunStatus.COMPLETED
        windows = await rt.store.list_ledgers("quota:acme:")
    assert [w.used["tokens"] for w in windows] == [TOK * 6, TOK * 2]


async def test_runs_and_cost_quotas(store: Any, clock: FakeClock) -> None:
    wf = app.build(Budget(), Quota(period=60, runs=2, cost=CALL_COST * 5), name="quota_runs")
    async with Runtime(store, clock=clock) as rt:
        for _ in range(2):
            assert (await rt.run(wf, {"turns": 2}, tenant="acme")).status is RunStatus.COMPLETED
        third = await rt.run(wf, {"turns": 1}, tenant="acme")
        assert third.escalation is not None and third.escalation["kind"] == "quota"
        assert third.escalation["details"]["dimension"] == "runs"
        clock.advance(60)
        fourth = await rt.run(wf, {"turns": 9}, tenant="acme")
        assert fourth.escalation is not None
        assert fourth.escalation["details"]["dimension"] == "cost"
        assert fourth.state["n"] == 5  # five calls of $0.15 fit in $0.75


async def test_a_quota_for_one_tenant_leaves_the_others_alone(store: Any, clock: FakeClock) -> None:
    wf = app.build(None, Quota(tenant="acme", period="day", tokens=TOK), name="quota_one")
    async with Runtime(store, clock=clock) as rt:
        assert (await rt.run(wf, {"turns": 3})).status is RunStatus.COMPLETED
        res = await rt.run(wf, {"turns": 3}, tenant="acme")
        assert res.status is RunStatus.ESCALATED and res.state["n"] == 1


def test_a_quota_refuses_bad_settings() -> None:
    with pytest.raises(ConfigurationError, match="period"):
        Quota(period="fortnight", tokens=1)
    with pytest.raises(ConfigurationError, match="> 0"):
        Quota(period=0, tokens=1)
    with pytest.raises(ConfigurationError, match="at least one"):
        Quota(period="day")
    with pytest.raises(ConfigurationError, match=">= 0"):
        Quota(tokens=-5)


async def test_a_run_refused_at_its_first_call_is_not_counted(store: Any, clock: FakeClock) -> None:
    """A run whose first call is refused for tokens was not admitted: it is counted when,
    resumed under a raised quota, its call fits; ``runs=1`` then refuses the next run."""
    wf = app.build(None, Quota(period="day", tokens=1, runs=1), name="quota_first_refused")
    async with Runtime(store, clock=clock) as rt:
        assert isinstance(rt.store, BudgetStore)
        first = await rt.run(wf, {"turns": 1}, tenant="acme")
        assert first.escalation is not None
        assert first.escalation["details"]["dimension"] == "tokens"
        (window,) = await rt.store.list_ledgers("quota:acme:")
        assert window.used["runs"] == window.reserved["runs"] == 0
        await rt.store.set_ledger_limits(window.key, {"tokens": 10_000})  # the operator
        done = await rt.wait((await rt.resume(first.run_id)).run_id)
        assert done.status is RunStatus.COMPLETED
        second = await rt.run(wf, {"turns": 1}, tenant="acme")
        assert second.escalation is not None
        assert second.escalation["details"]["dimension"] == "runs"
        (window,) = await rt.store.list_ledgers("quota:acme:")
    assert window.used["runs"] == 1 and window.reserved["runs"] == 0


async def test_a_runs_first_calls_made_at_once_count_it_once(store: Any, clock: FakeClock) -> None:
    """Two branches of a root run make their first model calls at the same time: one counts
    the run, the other sees it counted (neither is refused for the run's own admission)."""

    async def branch(state: app.S, ctx: RunContext) -> dict[str, Any]:
        await app.model.chat(f"{ctx.run_id}:{ctx.node}", max_tokens=8)
        return {}

    g = Graph(app.S, name="quota_branches")
    for name in ("left", "right"):
        g.add_node(name, branch)
        g.add_edge(START, name).add_edge(name, END)
    wf = g.compile(governance=Governance(parts=[Quota(period="day", runs=1)]))
    async with Runtime(store, clock=clock) as rt:
        assert isinstance(rt.store, BudgetStore)
        first = await rt.run(wf, {}, tenant="acme")
        second = await rt.run(wf, {}, tenant="acme")
        (window,) = await rt.store.list_ledgers("quota:acme:")
    assert first.status is RunStatus.COMPLETED, first.escalation
    assert second.escalation is not None and second.escalation["details"]["dimension"] == "runs"
    assert window.used["runs"] == 1 and window.reserved["runs"] == 0
