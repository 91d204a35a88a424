"""Budget envelopes in one process: each dimension trips at its limit with an overrun of at
most one call, the soft limit reaches the agent once, a trip is resumed with a raised budget,
child runs draw from their root's envelope, per-run overrides, bad input; an envelope with no
limit at all (``Budget()``, counting only) is written without reading its ledger back, still
counts every call, gives back a call that does not run, and a limit set on it afterwards by
hand still refuses at it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.governance import budget_app as app
from tests.governance.budget_app import CALL_COST, IN, OUT
from tether import RunStatus, Runtime
from tether.core.errors import ConfigurationError, InvalidInputError, PolicyViolationError
from tether.core.governor import GovernedCall
from tether.governance import Budget, GovernancePart, RunScope, StoreAuditLog
from tether.store.budget import BudgetStore, Ledger
from tether.store.memory import MemoryStore
from tether.store.sqlite import SqliteStore
from tether.testing import FakeClock

TOK = IN + OUT


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


async def ledger(rt: Runtime, root: str) -> Ledger:
    assert isinstance(rt.store, BudgetStore)
    row = await rt.store.get_ledger(f"run:{root}")
    assert row is not None
    return row


def calls_of(run_id: str) -> int:
    return sum(1 for r in app.model.requests if r.messages[-1].content.startswith(f"{run_id}:"))


# dimension, limit, usage of one call in that dimension, steps asked
CASES = [
    ("model_calls", 3, 1, 10),
    ("tool_calls", 4, 1, 10),
    ("input_tokens", 35, IN, 10),  # the prompt is estimated short: actual use passes it
    ("output_tokens", 22, OUT, 10),
    ("tokens", 50, TOK, 10),
    ("cost", 0.5, CALL_COST, 10),
    ("steps", 3, 1, 10),
]


@pytest.mark.parametrize(("dim", "limit", "per_call", "turns"), CASES)
async def test_each_dimension_trips_at_its_limit(
    store: Any, clock: FakeClock, dim: str, limit: float, per_call: float, turns: int
) -> None:
    wf = app.build(Budget(**{dim: limit}))
    async with Runtime(store, clock=clock) as rt:
        res = await rt.run(wf, {"turns": turns})
        assert res.status is RunStatus.ESCALATED, res
        esc = res.escalation
        assert esc is not None and esc["kind"] == "budget"
        d = esc["details"]
        assert d["dimension"] == dim and d["limit"] == limit
        row = await ledger(rt, res.run_id)
    used = row.used[dim]
    assert used <= limit + per_call  # an overrun of at most one call
    assert used + per_call > limit or d["requested"] + used > limit  # it stopped at the limit
    assert all(v == 0 for v in row.reserved.values())  # nothing left held
    # the ledger charged exactly the live calls the model saw
    assert row.used["model_calls"] == calls_of(res.run_id)
    assert row.used["tokens"] == TOK * calls_of(res.run_id)
    assert res.state["n"] < turns  # state intact where it stopped


async def test_wall_clock_trips_once_the_root_is_older_than_its_limit(
    store: Any, clock: FakeClock
) -> None:
    wf = app.build(Budget(wall_seconds=25))
    async with Runtime(store, clock=clock) as rt:
        res = await rt.run(wf, {"turns": 10, "tick": 10.0})  # each tool call takes 10 s
    assert res.status is RunStatus.ESCALATED
    d = res.escalation["details"] if res.escalation else {}
    assert d["dimension"] == "wall_seconds" and 25 < d["usage"] <= 35
    assert res.state["n"] == 3  # the step that passed 25 s commits, then the run parks


async def test_child_runs_draw_from_the_root_and_count(store: Any, clock: FakeClock) -> None:
    budget = Budget(model_calls=100, child_runs=2)
    child = app.build(budget, name="child")
    tree = app.build_tree(child, budget, 3)
    async with Runtime(store, clock=clock) as rt:
        res = await rt.run(tree, {"turns": 2})
        assert res.status is RunStatus.ESCALATED
        assert res.escalation is not None and res.escalation["kind"] == "budget"
        third = await rt.store.get_run(res.escalation["details"]["child"])
        row = await ledger(rt, res.run_id)
        assert isinstance(rt.store, BudgetStore)
        assert await rt.store.get_ledger(f"run:{third.run_id}") is None  # no envelope of its own
    assert third.escalation is not None
    assert third.escalation["details"]["dimension"] == "child_runs"
    assert row.used["child_runs"] == 2
    assert row.used["model_calls"] == 4  # two children, two turns each, one envelope


async def test_depth_limits_grandchildren(store: Any, clock: FakeClock) -> None:
    budget = Budget(depth=1)
    leaf = app.build(budget, name="leaf")
    middle = app.build_tree(leaf, budget, 1, name="middle")
    root = app.build_tree(middle, budget, 1, name="root")
    async with Runtime(store, clock=clock) as rt:
        res = await rt.run(root, {"turns": 1})
        assert res.status is RunStatus.ESCALATED
        grandchild = [r for r in await rt.store.list_runs() if r.run_id.count(".") == 2]
    assert len(grandchild) == 1 and grandchild[0].escalation is not None
    assert grandchild[0].escalation["details"]["dimension"] == "depth"
    assert grandchild[0].escalation["details"]["usage"] == 2


async def test_the_soft_limit_tells_the_agent_once(store: Any, clock: FakeClock) -> None:
    wf = app.build(Budget(model_calls=10))  # soft: 80 %
    async with Runtime(store, clock=clock) as rt:
        res = await rt.run(wf, {"turns": 10})
        assert res.status is RunStatus.COMPLETED
        events = [
            e for e in await rt.store.list_events(res.run_id) if e.type == "budget_soft_limit"
        ]
    mine = [r for r in app.model.requests if r.messages[-1].content.startswith(f"{res.run_id}:")]
    notes = [
        i
        for i, r in enumerate(mine)
        if any(m.role == "system" and "Budget notice" in m.content for m in r.messages)
    ]
    assert notes == [8]  # the prompt after the 8th call settled, and only that one
    note = next(m.content for m in mine[8].messages if m.role == "system")
    assert "model_calls at 80% (8 of 10)" in note and "Wrap up" in note
    assert len(events) == 1
    assert events[0].data["dimension"] == "model_calls" and events[0].data["percent"] == 80


async def test_resume_with_a_raised_budget_continues(store: Any, clock: FakeClock) -> None:
    wf = app.build(Budget(model_calls=3))
    async with Runtime(store, clock=clock) as rt:
        res = await rt.run(wf, {"turns": 5})
        assert res.status is RunStatus.ESCALATED and res.state["n"] == 3
        with pytest.raises(InvalidInputError, match="unknown budget dimension"):
            await rt.resume(res.run_id, {"raise_budget": {"modle_calls": 9}})
        with pytest.raises(InvalidInputError, match="must be >= 0"):
            await rt.resume(res.run_id, {"raise_budget": {"model_calls": -1}})
        with pytest.raises(InvalidInputError, match="can only raise"):
            await rt.resume(res.run_id, {"raise_budget": {"model_calls": 2}})
        assert (await rt.store.get_run(res.run_id)).status is RunStatus.ESCALATED
        again = await rt.resume(res.run_id, {"raise_budget": {"model_calls": 5}})
        done = await rt.wait(again.run_id)
        row = await ledger(rt, res.run_id)
        audited = (await StoreAuditLog(rt.store).records(run_id=res.run_id)).records
    assert done.status is RunStatus.COMPLETED and done.state["n"] == 5
    # the raise is in the audit trail (once: the refused resumes changed nothing)
    raised = [r.data for r in audited if r.kind == "escalation_resumed"]
    assert raised == [
        {"kind": "budget", "value": {"raise_budget": {"model_calls": 5}}, "metadata": {}}
    ]
    assert row.limits["model_calls"] == 5 and row.used["model_calls"] == 5
    assert calls_of(res.run_id) == 5  # the resumed step's earlier calls were not repeated


async def test_a_replay_charges_nothing(store: Any, clock: FakeClock) -> None:
    """The step that tripped on its tool call re-runs on resume: its model call comes back
    from the journal, unasked and uncharged."""
    wf = app.build(Budget(tool_calls=2))
    async with Runtime(store, clock=clock) as rt:
        res = await rt.run(wf, {"turns": 3})
        assert res.status is RunStatus.ESCALATED
        before = await ledger(rt, res.run_id)
        assert before.used["model_calls"] == 3 and before.used["tool_calls"] == 2
        done = await rt.wait(
            (await rt.resume(res.run_id, {"raise_budget": {"tool_calls": 3}})).run_id
        )
        after = await ledger(rt, res.run_id)
    assert done.status is RunStatus.COMPLETED
    assert after.used["model_calls"] == 3 == calls_of(res.run_id)
    assert after.used["tokens"] == 3 * TOK and after.used["tool_calls"] == 3


async def test_a_run_overrides_the_workflows_budget(store: Any, clock: FakeClock) -> None:
    wf = app.build(Budget(model_calls=10, cost=100))
    async with Runtime(store, clock=clock) as rt:
        res = await rt.run(wf, {"turns": 5}, budget={"model_calls": 2})
        assert res.status is RunStatus.ESCALATED
        assert res.escalation is not None and res.escalation["details"]["limit"] == 2
        run = await rt.store.get_run(res.run_id)
        assert run.metadata["budget"] == {"model_calls": 2.0}
        with pytest.raises(InvalidInputError, match="unknown budget dimension"):
            await rt.start(wf, {}, budget={"dollars": 1})
        with pytest.raises(InvalidInputError, match="must be >= 0"):
            await rt.start(wf, {}, budget={"cost": -0.5})
        with pytest.raises(InvalidInputError, match="must be a number"):
            await rt.start(wf, {}, budget={"cost": "lots"})
        with pytest.raises(InvalidInputError, match="no budget"):
            await rt.start(app.build(None, name="plain"), {}, budget={"cost": 1})


def test_a_budget_refuses_bad_limits() -> None:
    with pytest.raises(ConfigurationError, match="must be >= 0"):
        Budget(cost=-1)
    with pytest.raises(ConfigurationError, match="soft"):
        Budget(cost=1, soft=1.5)
    with pytest.raises(ConfigurationError, match="must be a number"):
        Budget(steps=True)  # type: ignore[arg-type]


class DenyTools(GovernancePart):
    """A part after the budget that refuses every tool call."""

    async def before_call(self, scope: RunScope, call: GovernedCall) -> None:
        if call.kind == "tool":
            raise PolicyViolationError("no tools in this test", tool=call.name)


async def test_a_call_a_later_part_stops_is_charged_nothing(store: Any, clock: FakeClock) -> None:
    """A tool call is charged in one write before it runs (its cost is known); when a part
    asked after the budget stops it, the charge is given back."""
    wf = app.build(Budget(tool_calls=2, model_calls=10), DenyTools())
    async with Runtime(store, clock=clock) as rt:
        res = await rt.run(wf, {"turns": 4})  # 4 tool calls asked: each denied, none charged
        row = await ledger(rt, res.run_id)
    assert res.status is RunStatus.COMPLETED and res.state["n"] == 4
    assert row.used["tool_calls"] == 0 and row.reserved["tool_calls"] == 0
    assert row.used["model_calls"] == 4


# -- an envelope with no limit: written without reading the ledger back --------------------
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
