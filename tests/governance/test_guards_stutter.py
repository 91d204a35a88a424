"""The stuttering check stops a runaway refund agent before its 4th identical refund: the
ledger shows exactly 3, the run is ESCALATED with its state intact, and raising the limit lets
it go on until it trips again at the new limit. The count comes from the effect journal, so a
new Runtime (fresh guard objects) on the same SQLite file still knows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.governance.refund_app import Ledger, Ticket, build
from tether import RunStatus, Runtime
from tether.core.errors import ConfigurationError, InvalidInputError
from tether.governance import StutterGuard
from tether.graph.results import RunResult
from tether.store.memory import MemoryStore
from tether.store.sqlite import SqliteStore


def assert_stutter_trip(res: RunResult, count: int, limit: int) -> None:
    assert res.status is RunStatus.ESCALATED
    esc = res.escalation
    assert esc is not None and esc["kind"] == "loop_guard", esc
    d = esc["details"]
    assert d["guard"] == "stutter" and d["tool"] == "refund_order"
    assert d["args"] == {"order_id": 7, "amount_cents": 2500}
    assert (d["count"], d["limit"]) == (count, limit)
    assert "stutter" in esc["reason"] and "raise_limit" in esc["reason"]
    assert f"already called {count} times" in esc["reason"]


async def test_the_runaway_agent_is_stopped_before_the_4th_refund(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.txt")
    wf = build(ledger)
    async with Runtime(MemoryStore()) as rt:
        res = await rt.run(wf, {"order_id": 7})
        assert_stutter_trip(res, count=3, limit=3)
        assert len(ledger.refunds()) == 3  # the 4th never reached the provider
        # state intact: the three committed steps, nothing of the stopped one
        assert res.state["order_id"] == 7
        assert len(res.state["attempts"]) == 3
        assert all(
            a.startswith("refund_order: {'status': 'accepted'") for a in res.state["attempts"]
        )
        tripped = [
            e for e in await rt.store.list_events(res.run_id) if e.type == "loop_guard_tripped"
        ]
        assert len(tripped) == 1 and tripped[0].data["count"] == 3
        # the trip left no intent of the 4th refund in the journal
        tools = [e for e in await rt.store.list_effects(res.run_id) if e.kind == "tool"]
        assert [e.status for e in tools] == ["done"] * 3

        # a plain resume would trip again at once: refused, saying what to do
        with pytest.raises(InvalidInputError, match="raise_limit"):
            await rt.resume(res.run_id)
        for bad in ({"raise_limit": {"stutter": 3}}, {"raise_limit": {"semantic": 5}}, {"x": 1}):
            with pytest.raises(InvalidInputError):
                await rt.resume(res.run_id, bad)
        assert len(ledger.refunds()) == 3

        again = await rt.resume(res.run_id, {"raise_limit": {"stutter": 5}})
        assert isinstance(again, RunResult)
        assert_stutter_trip(again, count=5, limit=5)
        assert len(ledger.refunds()) == 5  # the 4th and 5th went through, the 6th did not
        assert len(again.state["attempts"]) == 5


async def test_the_count_survives_a_new_runtime_on_the_same_sqlite_file(tmp_path: Path) -> None:
    ledger, db = Ledger(tmp_path / "ledger.txt"), tmp_path / "runs.db"
    async with Runtime(SqliteStore(db)) as rt:
        res = await rt.run(build(ledger), {"order_id": 7})
        assert_stutter_trip(res, count=3, limit=3)
    # a new process: a new Runtime, new workflow and guard objects with no memory of the run
    async with Runtime(SqliteStore(db), workflows=[build(ledger)]) as rt:
        again = await rt.resume(res.run_id, {"raise_limit": {"stutter": 4}})
        assert isinstance(again, RunResult)
        assert_stutter_trip(again, count=4, limit=4)
        assert len(ledger.refunds()) == 4
        run = await rt.store.get_run(res.run_id)
        assert run.metadata["loop_guards"] == {"stutter": 4}


async def test_different_arguments_are_not_a_stutter(tmp_path: Path) -> None:
    from tether import END, START, Graph, RunContext
    from tether.governance import Governance
    from tether.tools import ToolExecutor, tool

    paid: list[int] = []

    @tool(scope="write")
    def refund(order_id: int) -> str:
        """Refund."""
        paid.append(order_id)
        return "ok"

    tools = ToolExecutor([refund])

    async def agent(state: Ticket, ctx: RunContext) -> dict[str, Any]:
        for order in [1, 2, 3, 4, 1, 2, 1, 1]:
            res = await tools.call("refund", {"order_id": order}, ctx=ctx)
            if not res.ok:
                raise AssertionError(res.error)
        return {}

    g = Graph(Ticket, name="many_orders")
    g.add_node("agent", agent)
    g.add_edge(START, "agent").add_edge("agent", END)
    wf = g.compile(governance=Governance(guards=[StutterGuard(per_tool={"refund": 2})]))
    async with Runtime(MemoryStore()) as rt:
        res = await rt.run(wf, {})
    # order 1 a third time trips (per-tool limit 2), in the same node run
    assert res.status is RunStatus.ESCALATED
    assert res.escalation is not None and res.escalation["details"]["args"] == {"order_id": 1}
    assert paid == [1, 2, 3, 4, 1, 2]


def test_bad_configuration_is_refused() -> None:
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ConfigurationError, match="max_repeats"):
            StutterGuard(max_repeats=bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="per_tool"):
        StutterGuard(per_tool={"refund": 0})
