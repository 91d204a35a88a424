"""The no-progress check: N steps in a row without a change to the state fields the workflow
declares as progress trip the run at a step boundary (the step commits, the run parks
ESCALATED with state and plan intact); the count lives in the run's metadata, so it holds
across a new Runtime on the same SQLite file; a resume grants more steps."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TypedDict

import pytest

from tether import END, START, Graph, RunStatus, Runtime
from tether.core.errors import ConfigurationError, InvalidInputError
from tether.governance import Governance, NoProgressGuard, RunScope
from tether.governance.scope import AuditSink
from tether.graph.results import RunResult
from tether.store.sqlite import SqliteStore


class Work(TypedDict, total=False):
    done: list[str]
    chatter: int
    steps: int


class Audit(AuditSink):
    def __init__(self) -> None:
        self.records: list[tuple[str, dict[str, Any]]] = []

    async def record(self, scope: RunScope, kind: str, data: dict[str, Any]) -> None:
        self.records.append((kind, data))


def build(progress_at: set[int], audit: AuditSink, max_steps: int = 3, end: int = 100) -> Any:
    """A worker that finishes an item at the steps in ``progress_at`` and only chatters at
    the others; it ends after ``end`` steps."""

    def work(state: Work) -> dict[str, Any]:
        step = state.get("steps", 0) + 1
        if step in progress_at:
            return {"steps": step, "done": [*state.get("done", []), f"item{step}"]}
        return {"steps": step, "chatter": state.get("chatter", 0) + 1}

    def route(state: Work) -> str:
        return END if state["steps"] >= end else "work"

    g = Graph(Work, name="worker")
    g.add_node("work", work)
    g.add_edge(START, "work")
    g.add_conditional_edges("work", route, ["work", END])
    guard = NoProgressGuard(fields=["done"], max_steps=max_steps)
    return g.compile(governance=Governance(guards=[guard], audit=audit))


def assert_trip(res: RunResult | Any, step: int, limit: int) -> None:
    assert isinstance(res, RunResult) and res.status is RunStatus.ESCALATED
    esc = res.escalation
    assert esc is not None and esc["kind"] == "loop_guard" and esc["step"] == step
    d = esc["details"]
    assert d["guard"] == "no_progress" and d["fields"] == ["done"]
    assert (d["steps"], d["limit"], d["step"]) == (limit, limit, step)
    assert "no_progress" in esc["reason"] and "Resume the run" in esc["reason"]
    assert res.state["steps"] == step  # the tripping step committed: state intact


async def test_steps_without_progress_trip_and_a_resume_grants_more(tmp_path: Path) -> None:
    db, audit = tmp_path / "runs.db", Audit()
    async with Runtime(SqliteStore(db)) as rt:
        res = await rt.run(build({1, 2}, audit), {})
        assert_trip(res, step=5, limit=3)  # steps 3, 4, 5 changed nothing in `done`
        assert res.state["done"] == ["item1", "item2"] and res.state["chatter"] == 3
        events = await rt.store.list_events(res.run_id)
        tripped = [e for e in events if e.type == "loop_guard_tripped"]
        assert len(tripped) == 1 and tripped[0].step == 5 and tripped[0].data["steps"] == 3
        assert [k for k, _ in audit.records] == ["loop_guard.trip"]
        with pytest.raises(InvalidInputError, match="no_progress"):
            await rt.resume(res.run_id, {"raise_limit": {"no_progress": 0}})

    # a new Runtime with new guard objects: the count is in the run's metadata
    async with Runtime(SqliteStore(db), workflows=[build({1, 2}, Audit())]) as rt:
        again = await rt.resume(res.run_id)  # grants 3 more steps
        assert_trip(again, step=8, limit=3)
        more = await rt.resume(res.run_id, {"raise_limit": {"no_progress": 5}})
        assert_trip(more, step=13, limit=5)
        run = await rt.store.get_run(res.run_id)
        assert run.metadata["loop_guards"] == {"no_progress": 5}


async def test_progress_now_and_then_keeps_the_run_going(tmp_path: Path) -> None:
    audit = Audit()
    async with Runtime(SqliteStore(tmp_path / "runs.db")) as rt:
        # two idle steps between items never reach the limit of 3
        res = await rt.run(build({1, 4, 7, 10}, audit, end=12), {})
    assert res.status is RunStatus.COMPLETED
    assert res.state["done"] == ["item1", "item4", "item7", "item10"]
    assert audit.records == []


async def test_a_first_step_without_progress_counts(tmp_path: Path) -> None:
    async with Runtime(SqliteStore(tmp_path / "runs.db")) as rt:
        res = await rt.run(build(set(), Audit(), max_steps=2), {"done": ["given"]})
    assert_trip(res, step=2, limit=2)


def test_bad_configuration_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="fields"):
        NoProgressGuard(fields=[])
    with pytest.raises(ConfigurationError, match="max_steps"):
        NoProgressGuard(fields=["done"], max_steps=0)
    # a bare string was read as its letters: six fields no run ever writes, never changing,
    # so every run lasting max_steps steps tripped, progress or not
    with pytest.raises(ConfigurationError, match="got 'answer'"):
        NoProgressGuard("answer")  # type: ignore[arg-type]


async def test_a_trip_lands_in_the_hash_chained_audit_log(tmp_path: Path) -> None:
    from tether.governance import StoreAuditLog, verify_audit

    async with Runtime(SqliteStore(tmp_path / "runs.db")) as rt:
        res = await rt.run(build({1}, StoreAuditLog(), max_steps=2), {})
        assert_trip(res, step=3, limit=2)
        page = await StoreAuditLog(rt.store).records(run_id=res.run_id)
        assert [r.kind for r in page.records] == ["loop_guard.trip"]
        assert json.loads(page.records[0].data_json)["guard"] == "no_progress"
        assert (await verify_audit(rt.store)).ok
