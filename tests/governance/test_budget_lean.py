"""A limited budget reads back only what it checks after each write (``LedgerTake``: its
limits, the limited counters, the soft-limit marks): soft limits are still announced once, and
a limit set since on a dimension the budget did not limit is still seen, on every backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.governance import budget_app as app
from tests.graph.conftest import PG_DSN, pg_schema
from tether import END, START, Graph, RunContext, RunStatus, Runtime
from tether.core.governor import GovernedCall
from tether.governance import Budget, Governance, GovernancePart, RunScope
from tether.store.budget import BudgetStore, LedgerTake
from tether.store.memory import MemoryStore
from tether.store.sqlite import SqliteStore
from tether.testing import FakeClock


@pytest.fixture
def clock() -> Iterator[FakeClock]:
    c = FakeClock()
    app.clock_hook[:] = [c]
    yield c
    app.clock_hook.clear()


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock) -> Iterator[Any]:
    if request.param == "memory":
        yield MemoryStore(clock)
    elif request.param == "sqlite":
        yield SqliteStore(tmp_path / "lean.db", clock=clock)
    else:
        from tether.store.postgres import PostgresStore

        with pg_schema("budget_lean") as schema:
            yield PostgresStore(PG_DSN, schema=schema, clock=clock)


async def soft_events(rt: Runtime, run_id: str) -> list[tuple[str, float, float]]:
    return [
        (e.data["dimension"], e.data["limit"], e.data["usage"])
        for e in await rt.store.list_events(run_id)
        if e.type == "budget_soft_limit"
    ]


async def test_a_soft_limit_crossed_by_a_lean_write_is_announced_once(
    store: Any, clock: FakeClock
) -> None:
    assert isinstance(store, LedgerTake)
    wf = app.build(Budget(tool_calls=10, steps=100, cost=100.0))
    async with Runtime(store, clock=clock) as rt:
        res = await rt.run(wf, {"turns": 10})
        assert res.status is RunStatus.COMPLETED
        soft = await soft_events(rt, res.run_id)
        assert isinstance(rt.store, BudgetStore)
        row = await rt.store.get_ledger(f"run:{res.run_id}")
    assert soft == [("tool_calls", 10, 8)]  # the charge of the 8th tool call crossed 80 %
    assert row is not None and row.evented == ["tool_calls"] and row.used["tool_calls"] == 10


class LimitToolsLater(GovernancePart):
    """Sets ``tool_calls=3`` on the run's envelope at its first tool call (after the budget
    charged it), behind the budget's back (``set_ledger_limits``, as an operator could): a
    dimension the budget does not limit, so its lean writes did not expect it."""

    async def before_call(self, scope: RunScope, call: GovernedCall) -> None:
        if call.kind == "tool" and call.args.get("i") == 0:
            assert isinstance(scope.store, BudgetStore)
            await scope.store.set_ledger_limits(f"run:{scope.run.run_id}", {"tool_calls": 3})


async def tool_node(state: app.S, ctx: RunContext) -> dict[str, Any]:
    n = state.get("n", 0)
    await app.tools.call("work", {"i": n}, ctx=ctx)
    return {"n": n + 1}


def again(state: app.S) -> str:
    return "work" if state.get("n", 0) < state.get("turns", 1) else END


def tools_only(budget: Budget, *parts: GovernancePart) -> Any:
    """One tool call a step, no model call: every write of the budget is a lean one."""
    g = Graph(app.S, name="tools_only")
    g.add_node("work", tool_node)
    g.add_edge(START, "work")
    g.add_conditional_edges("work", again, ["work", END])
    return g.compile(governance=Governance(budget=budget, parts=parts))


async def test_a_limit_set_outside_a_limited_budget_is_seen_at_the_next_write(
    store: Any, clock: FakeClock
) -> None:
    wf = tools_only(Budget(cost=100.0, steps=100), LimitToolsLater())
    async with Runtime(store, clock=clock) as rt:
        res = await rt.run(wf, {"turns": 5})
        # the step after the first call read the new limit back: the third call crossed
        # 80 % of it (announced then, once), the fourth is refused
        assert await soft_events(rt, res.run_id) == [("tool_calls", 3, 3)]
        assert res.status is RunStatus.ESCALATED and res.state["n"] == 3
        esc = res.escalation
        assert esc is not None and esc["kind"] == "budget"
        d = esc["details"]
        assert (d["dimension"], d["limit"], d["usage"], d["requested"]) == ("tool_calls", 3, 3, 1)
        done = await rt.wait(
            (await rt.resume(res.run_id, {"raise_budget": {"tool_calls": 5}})).run_id
        )
        soft = await soft_events(rt, res.run_id)
    assert done.status is RunStatus.COMPLETED and done.state["n"] == 5
    assert soft == [("tool_calls", 3, 3)]
