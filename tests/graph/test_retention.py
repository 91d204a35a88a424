"""Automatic retention: keep the last N checkpoints of finished runs; purge old finished runs."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, TypedDict

import pytest

from tether import (
    END,
    START,
    ConfigurationError,
    Graph,
    Retention,
    RunNotFoundError,
    Runtime,
    interrupt,
)
from tether import append as append_reducer
from tether.store.memory import MemoryStore
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
