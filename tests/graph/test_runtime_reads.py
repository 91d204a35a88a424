"""The Runtime's reads (``tether.graph.runtime_reads``): ``list_runs``' status filter on every
backend."""

from __future__ import annotations

from typing import Any, TypedDict

import pytest

from tether import END, START, Graph, InvalidInputError, RunStatus, Runtime


class Done(TypedDict, total=False):
    done: bool


def _one_step() -> Any:
    g = Graph(Done, name="reads_one")
    g.add_node("a", lambda s: {"done": True})
    g.add_edge(START, "a").add_edge("a", END)
    return g.compile()


async def test_a_status_filter_takes_one_status_or_several(any_rt: Runtime) -> None:
    # a plain string was read as its letters: "'E' is not a valid RunStatus" (a ValueError) on
    # SQLite and PostgreSQL, while the memory store matched it as a substring
    done = await any_rt.run(_one_step(), {})
    queued = await any_rt.submit(_one_step(), {})
    assert [r.run_id for r in await any_rt.list_runs(status="COMPLETED")] == [done.run_id]
    assert [r.run_id for r in await any_rt.list_runs(status=RunStatus.PLANNED)] == [queued.run_id]
    both = await any_rt.list_runs(status=["PLANNED", RunStatus.COMPLETED])
    assert {r.run_id for r in both} == {done.run_id, queued.run_id}
    for bad in ("DONE", "E", 5, ["COMPLETED", "nope"]):
        with pytest.raises(InvalidInputError, match="status must be a run status or a list"):
            await any_rt.list_runs(status=bad)


async def test_wait_with_no_time_left_looks_once(any_rt: Runtime) -> None:
    """``wait(timeout=0)`` raised TimeoutError for a run settled long before (asyncio cut the
    wait before it first looked); ``timeout=-1`` did the same and NaN was taken."""
    done = await any_rt.run(_one_step(), {})
    assert (await any_rt.wait(done.run_id, timeout=0)).status is RunStatus.COMPLETED
    handle = await any_rt.submit(_one_step(), {})  # no worker runs it here (recover=False)
    with pytest.raises(TimeoutError, match="has not settled yet"):
        await any_rt.wait(handle.run_id, timeout=0)
    for bad in (-1, float("nan"), float("inf"), True, "1"):
        with pytest.raises(InvalidInputError, match="wait timeout must be a finite number"):
            await any_rt.wait(done.run_id, timeout=bad)
