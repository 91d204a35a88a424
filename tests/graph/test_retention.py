"""Automatic retention: keep the last N checkpoints of finished runs; purge old finished runs."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest

from tests.graph.conftest import PG_DSN, pg_schema
from tether import (
    END,
    START,
    ConfigurationError,
    Graph,
    InvalidInputError,
    Retention,
    RunNotFoundError,
    Runtime,
    interrupt,
)
from tether import append as append_reducer
from tether.agents import ForkJoinOptions, fork_join
from tether.store.memory import MemoryStore
from tether.store.postgres import PostgresStore
from tether.store.protocol import RunStore
from tether.store.sqlite import SqliteStore
from tether.testing.clock import FakeClock


class S(TypedDict, total=False):
    n: int
    log: Annotated[list[int], append_reducer]


def _counter(limit: int) -> Any:
    g = Graph(S, name=f"count{limit}")
    g.add_node("inc", lambda s: {"n": s["n"] + 1, "log": [s["n"] + 1]})
    g.add_edge(START, "inc")
    g.add_conditional_edges("inc", lambda s: END if s["n"] >= limit else "inc", ["inc", END])
    return g.compile()


async def test_keep_last_prunes_finished_runs_and_every_kept_step_still_reads_exactly() -> None:
    wf = _counter(30)
    async with Runtime(MemoryStore(), recover=False, retention=Retention(keep_last=5)) as rt:
        res = await rt.run(wf, {"n": 0})
        steps = [h.step for h in await rt.history(res.run_id)]
        assert steps == [26, 27, 28, 29, 30]
        for step in steps:
            state = await rt.get_state(res.run_id, step)
            assert state == {"n": step, "log": list(range(1, step + 1))}


async def test_keep_last_leaves_parked_runs_whole() -> None:
    def ask(state: S) -> dict[str, Any]:
        return {"n": interrupt("?")}

    g = Graph(S, name="parked_ret")
    g.add_node("a", lambda s: {"n": 1}).add_node("b", lambda s: {"n": 2})
    g.add_node("ask", ask)
    g.add_edge(START, "a").add_edge("a", "b").add_edge("b", "ask")
    async with Runtime(MemoryStore(), recover=False, retention=Retention(keep_last=1)) as rt:
        res = await rt.run(g.compile(), {})
        assert [h.step for h in await rt.history(res.run_id)] == [0, 1, 2]


async def test_keep_last_leaves_a_subgraph_whole_until_its_parent_has_its_writes(
    tmp_path: Path,
) -> None:
    # the child was pruned as it completed, before the node following it read the child's
    # writes from its checkpoints: the parent got only the last keep_last steps' writes
    child = _counter(4)
    g = Graph(S, name="keeps_child")
    g.add_node("sub", child).add_node("after", lambda s: {"log": [0]})
    g.add_edge(START, "sub").add_edge("sub", "after").add_edge("after", END)
    retention = Retention(keep_last=1)
    async with Runtime(SqliteStore(tmp_path / "r.db"), recover=False, retention=retention) as rt:
        res = await rt.run(g.compile(), {"n": 0})
        assert res.state == {"n": 4, "log": [1, 2, 3, 4, 0]}
        (kid,) = await rt.list_runs(parent_run_id=res.run_id)
        # once the parent completed, the child is pruned like any finished run
        assert [h.step for h in await rt.history(kid.run_id)] == [4]
        assert [h.step for h in await rt.history(res.run_id)] == [2]


async def test_finished_ttl_purges_old_finished_runs_only() -> None:
    clock = FakeClock(1000.0)
    store = MemoryStore(clock=clock)
    wf = _counter(2)
    ret = Retention(finished_ttl=60, sweep_interval=0.01)
    async with Runtime(store, recover=False, retention=ret, clock=clock) as rt:
        old = await rt.run(wf, {"n": 0})
        clock.advance(120)
        new = await rt.run(wf, {"n": 0})
        for _ in range(200):
            try:
                await rt.get_run(old.run_id)
            except RunNotFoundError:
                break
            await asyncio.sleep(0.01)
        with pytest.raises(RunNotFoundError):
            await rt.get_run(old.run_id)
        assert (await rt.get_run(new.run_id)).status.value == "COMPLETED"


def test_bad_retention_settings_are_rejected() -> None:
    with pytest.raises(ConfigurationError, match="keep_last"):
        Retention(keep_last=0)
    with pytest.raises(ConfigurationError, match="finished_ttl"):
        Retention(finished_ttl=-1)
    # NaN compares false with every time: before, a NaN ttl was taken and purged nothing
    for ttl in (float("nan"), float("inf"), "7d", True):
        with pytest.raises(ConfigurationError, match="finished_ttl must be a finite number"):
            Retention(finished_ttl=ttl)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="sweep_interval"):
        Retention(sweep_interval=float("nan"))
    with pytest.raises(ConfigurationError, match="keep_last must be an int"):
        Retention(keep_last=2.5)  # type: ignore[arg-type]


# -- purging never takes a run its parked parent will look for ---------------------------------
class Branch(TypedDict, total=False):
    order: str
    kind: str
    out: str


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def clocked_store(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[FakeClock, RunStore]]:
    clock = FakeClock(1_000_000.0)
    if request.param == "sqlite":
        yield clock, SqliteStore(tmp_path / "purge.db", clock=clock)
        return
    with pg_schema("tether_purge") as schema:
        yield clock, PostgresStore(PG_DSN, schema=schema, clock=clock)


async def test_purging_keeps_the_finished_branch_of_a_parked_parent(
    clocked_store: tuple[FakeClock, RunStore],
) -> None:
    """A fork-join parent parked on one branch's question, long after its other branch charged
    order 1234: the purge must leave that branch, or the resumed parent starts it again and
    charges twice (what the purge did before it took whole families only)."""
    clock, store = clocked_store
    charges: list[str] = []

    def branch_node(s: Branch) -> dict[str, Any]:
        if s.get("kind") == "charge":
            charges.append(s["order"])
            return {"out": "charged"}
        return {"out": str(interrupt({"approve": s["order"]}))}

    g = Graph(Branch, name="pay_or_ask")
    g.add_node("n", branch_node).add_edge(START, "n").add_edge("n", END)
    fan = fork_join(ForkJoinOptions(branch=g.compile()), name="charge_and_ask")
    day = 86_400.0
    async with Runtime(store, recover=False, clock=clock) as rt:
        res = await rt.run(
            fan, {"branches": [{"order": "1234", "kind": "charge"}, {"order": "1234"}]}
        )
        assert res.status.value == "ESCALATED" and charges == ["1234"]
        finished = await rt.run(_counter(1), {"n": 0})  # a lone old run: purged
        clock.advance(40 * day)
        assert await rt.purge(30 * day, dry_run=True) == 1
        assert await rt.purge(30 * day) == 1
        with pytest.raises(RunNotFoundError):
            await rt.get_run(finished.run_id)
        done = await rt.resume(res.run_id, "yes")
        assert done.status.value == "COMPLETED", (done.error or {}).get("traceback")
        assert charges == ["1234"]  # charged once
        assert [r["state"]["out"] for r in done.state["results"]] == ["charged", "yes"]
        clock.advance(40 * day)
        assert await rt.purge(30 * day) == 3  # now the family goes whole: parent and branches
        assert await rt.store.list_runs() == []


async def test_purge_refuses_a_negative_age() -> None:
    async with Runtime(MemoryStore(), recover=False) as rt:
        with pytest.raises(InvalidInputError, match="older_than"):
            await rt.purge(-1)


async def test_prune_and_purge_refuse_what_is_no_count_or_age() -> None:
    # prune(run, 1.5) and purge('x') were TypeErrors, prune(run, True) pruned to 1, and
    # purge(nan) quietly deleted nothing (every age compares false with NaN)
    async with Runtime(MemoryStore(), recover=False) as rt:
        res = await rt.run(_counter(3), {"n": 0})
        for keep in (1.5, True, "2", float("nan"), 0):
            with pytest.raises(InvalidInputError, match="keep_last must be an int >= 1"):
                await rt.prune(res.run_id, keep)
        for age in (float("nan"), float("inf"), "x", True, -1):
            with pytest.raises(InvalidInputError, match="older_than must be a finite number"):
                await rt.purge(age)
        assert len(await rt.history(res.run_id)) == 4
