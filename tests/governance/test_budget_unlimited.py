"""A budget envelope with no limit at all (``Budget()``, counting only) is written without
reading its ledger back after each reservation or charge; it still counts every call, gives
back a call that does not run, and a limit set on it afterwards by hand still refuses at it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.governance import budget_app as app
from tests.governance.budget_app import IN, OUT
from tether import RunStatus, Runtime
from tether.core.errors import PolicyViolationError
from tether.core.governor import GovernedCall
from tether.governance import Budget, GovernancePart, RunScope
from tether.store.budget import BudgetStore, Ledger
from tether.store.memory import MemoryStore
from tether.store.sqlite import SqliteStore
from tether.testing import FakeClock


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock) -> Any:
    return (
        MemoryStore(clock)
        if request.param == "memory"
        else SqliteStore(tmp_path / "b.db", clock=clock)
    )


@pytest.fixture
def clock() -> Any:
    c = FakeClock()
    app.clock_hook[:] = [c]
    yield c
    app.clock_hook.clear()


def spy(store: Any, names: tuple[str, ...]) -> dict[str, int]:
    """Count the calls of ``store``'s ledger writes ``names``."""
    counts = dict.fromkeys(names, 0)
    for name in names:
        method = getattr(store, name)

        async def counted(*args: Any, _m: Any = method, _n: str = name, **kw: Any) -> Any:
            counts[_n] += 1
            return await _m(*args, **kw)

        setattr(store, name, counted)
    return counts


async def ledger(rt: Runtime, root: str) -> Ledger:
    assert isinstance(rt.store, BudgetStore)
    row = await rt.store.get_ledger(f"run:{root}")
    assert row is not None
    return row


async def test_an_envelope_without_limits_counts_every_call_without_reading_it_back(
    store: Any, clock: FakeClock
) -> None:
    counts = spy(store, ("reserve_ledger", "charge_ledger", "fit_ledger"))
    async with Runtime(store, clock=clock) as rt:
        res = await rt.run(app.build(Budget()), {"turns": 3})
        row = await ledger(rt, res.run_id)
    assert res.status is RunStatus.COMPLETED
    # 3 model reservations, 3 tool charges, 2 step boundaries: none read the ledger back
    assert counts == {"reserve_ledger": 0, "charge_ledger": 0, "fit_ledger": 8}
    assert row.limits == {}
    assert row.used["model_calls"] == 3 and row.used["tool_calls"] == 3
    assert row.used["steps"] == 2 and row.used["tokens"] == 3 * (IN + OUT)
    assert all(v == 0 for v in row.reserved.values())


class DenyTools(GovernancePart):
    async def before_call(self, scope: RunScope, call: GovernedCall) -> None:
        if call.kind == "tool":
            raise PolicyViolationError("no tools in this test", tool=call.name)


async def test_a_call_stopped_after_the_charge_is_given_back(store: Any, clock: FakeClock) -> None:
    async with Runtime(store, clock=clock) as rt:
        res = await rt.run(app.build(Budget(), DenyTools()), {"turns": 2})
        row = await ledger(rt, res.run_id)
    assert res.status is RunStatus.COMPLETED
    assert row.used["tool_calls"] == 0 and row.reserved["tool_calls"] == 0
    assert row.used["model_calls"] == 2


class LimitLater(GovernancePart):
    """Sets ``tool_calls=2`` on the run's envelope at its second model call, behind the
    budget's back (``set_ledger_limits``, as an operator could)."""

    def __init__(self) -> None:
        self.model_calls = 0

    async def before_call(self, scope: RunScope, call: GovernedCall) -> None:
        if call.kind != "model":
            return
        self.model_calls += 1
        if self.model_calls == 2:
            assert isinstance(scope.store, BudgetStore)
            assert await scope.store.set_ledger_limits(f"run:{scope.run.run_id}", {"tool_calls": 2})


async def test_a_limit_set_later_still_refuses_at_it_and_is_announced(
    store: Any, clock: FakeClock
) -> None:
    wf = app.build(Budget(), LimitLater())
    async with Runtime(store, clock=clock) as rt:
        res = await rt.run(wf, {"turns": 4})
        assert res.status is RunStatus.ESCALATED and res.state["n"] == 2
        esc = res.escalation
        assert esc is not None and esc["kind"] == "budget"
        d = esc["details"]
        assert (d["dimension"], d["limit"], d["usage"], d["requested"]) == ("tool_calls", 2, 2, 1)
        done = await rt.wait(
            (await rt.resume(res.run_id, {"raise_budget": {"tool_calls": 4}})).run_id
        )
        row = await ledger(rt, res.run_id)
        soft = [
            e.data for e in await rt.store.list_events(res.run_id) if e.type == "budget_soft_limit"
        ]
    assert done.status is RunStatus.COMPLETED and done.state["n"] == 4
    assert row.used["tool_calls"] == 4
    # the limit is seen once a write reads the envelope back (a model call's settle that
    # overran its estimate here): its soft limit (80 % of 2) is announced, once
    assert [(s["dimension"], s["limit"], s["usage"]) for s in soft] == [("tool_calls", 2, 2)]
