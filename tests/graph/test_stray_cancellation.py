"""A node that raises CancelledError while nobody is cancelling it (it awaited a future or a
task that someone else cancelled) fails like any node error: retried by its policy, then the
run FAILED with a StrayCancellation. Before, the run was left EXECUTING with nothing running
it (``wait`` timed out, and only a lease expiry in another process could move it). A run that
is really cancelled is still CANCELLED."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, TypedDict

from tether import END, START, Graph, RetryPolicy, RunStatus, Runtime


class S(TypedDict, total=False):
    out: str


async def _await_a_cancelled_future() -> None:
    fut = asyncio.get_running_loop().create_future()
    fut.cancel()  # cancelled by someone else: awaiting it raises CancelledError here
    await fut


def _workflow(name: str, fn: Any, attempts: int = 1) -> Any:
    g = Graph(S, name=name)
    retry = RetryPolicy(max_attempts=attempts, initial_interval=0.0, jitter=False)
    g.add_node("n", fn, retry=retry).add_edge(START, "n").add_edge("n", END)
    return g.compile()


async def test_a_stray_cancelled_error_fails_the_node_not_the_run_loop(tmp_path: Path) -> None:
    async def node(state: S) -> dict[str, Any]:
        await _await_a_cancelled_future()
        return {"out": "never"}

    wf = _workflow("stray", node)
    async with Runtime(f"sqlite:///{tmp_path}/runs.db", recover=False) as rt:
        res = await rt.run(wf, {})
    assert res.status is RunStatus.FAILED
    assert res.error is not None and res.error["type"] == "StrayCancellation"
    assert "without being cancelled" in res.error["message"]


async def test_a_stray_cancellation_is_retried_by_the_nodes_policy(tmp_path: Path) -> None:
    tries: list[int] = []

    async def node(state: S) -> dict[str, Any]:
        tries.append(1)
        if len(tries) == 1:
            await _await_a_cancelled_future()
        return {"out": "second try"}

    wf = _workflow("stray_retried", node, attempts=2)
    async with Runtime(f"sqlite:///{tmp_path}/runs.db", recover=False) as rt:
        res = await rt.run(wf, {})
    assert res.status is RunStatus.COMPLETED and res.state["out"] == "second try"
    assert len(tries) == 2


async def test_a_run_really_cancelled_is_still_cancelled(tmp_path: Path) -> None:
    entered = asyncio.Event()

    async def node(state: S) -> dict[str, Any]:
        entered.set()
        await asyncio.Event().wait()  # until the run is cancelled
        return {"out": "never"}

    wf = _workflow("really_cancelled", node, attempts=3)
    async with Runtime(f"sqlite:///{tmp_path}/runs.db", recover=False) as rt:
        handle = await rt.start(wf, {})
        await entered.wait()
        rec = await rt.cancel(handle.run_id, reason="stop")
    assert rec.status is RunStatus.CANCELLED
