"""Fork-join: what the join reports of branches it did not wait for."""

from __future__ import annotations

import asyncio
import importlib
from pathlib import Path
from typing import Any, TypedDict

import pytest

from tether import END, START, Graph, Runtime
from tether.agents import ForkJoinOptions, fork_join

fork_join_module = importlib.import_module("tether.agents.fork_join")


class Branch(TypedDict, total=False):
    x: int
    fail: bool
    y: int


def compute(state: Branch) -> dict[str, Any]:
    if state.get("fail"):
        raise ValueError(f"branch {state['x']} fails")
    return {"y": state["x"] * 10}


async def test_branches_that_finished_before_a_quorum_join_keep_their_state_and_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A quorum join reads the branches it did not wait for from the store: one that had
    completed by then was reported ``COMPLETED`` without its ``state`` (and a failed one
    without its ``error``), so ``result["state"]`` raised KeyError for a completed branch."""
    real = fork_join_module.follow

    async def follow(host: Any, child_id: str) -> Any:
        if not child_id.endswith(".0"):  # branches 1 and 2 finish, but are never seen to
            await real(host, child_id)
            await asyncio.Event().wait()
        for other in (".1", ".2"):  # branch 0 is seen last: the quorum is met by it alone
            await real(host, child_id[:-2] + other)
        return await real(host, child_id)

    monkeypatch.setattr(fork_join_module, "follow", follow)
    g = Graph(Branch, name="fj_seen_branch")
    g.add_node("compute", compute).add_edge(START, "compute").add_edge("compute", END)
    branch = g.compile()
    wf = fork_join(ForkJoinOptions(branch=branch, join="quorum", quorum=1), name="fj_seen")
    inputs = [{"x": 1}, {"x": 2}, {"x": 3, "fail": True}]
    async with Runtime(f"sqlite:///{tmp_path}/fj.db", workflows=[wf, branch]) as rt:
        res = await rt.run(wf, {"branches": inputs})
    assert res.status.value == "COMPLETED", res.error
    assert res.state["joined"] == "quorum"
    results = res.state["results"]
    assert [r["status"] for r in results] == ["COMPLETED", "COMPLETED", "FAILED"]
    assert [r.get("state", {}).get("y") for r in results[:2]] == [10, 20]
    assert "branch 3 fails" in results[2]["error"]


async def test_a_branch_finishing_as_the_join_cancels_it_is_joined_not_a_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A branch that completed between the join's read of it and its cancel made the cancel
    raise ``run ... is already COMPLETED``, which failed the parent run."""
    real = fork_join_module.follow
    gate = asyncio.Event()

    async def slow(state: Branch) -> dict[str, Any]:
        if state["x"] == 2:
            await gate.wait()
        return {"y": state["x"] * 10}

    async def follow(host: Any, child_id: str) -> Any:
        if child_id.endswith(".1"):  # the slow branch: never seen to finish
            await asyncio.Event().wait()
        return await real(host, child_id)

    original_cancel = Runtime.cancel

    async def cancel(self: Runtime, run_id: str, **kw: Any) -> Any:
        gate.set()  # the branch finishes just as the join comes to cancel it
        await real(self, run_id)
        return await original_cancel(self, run_id, **kw)

    monkeypatch.setattr(fork_join_module, "follow", follow)
    monkeypatch.setattr(Runtime, "cancel", cancel)
    g = Graph(Branch, name="fj_late_branch")
    g.add_node("compute", slow).add_edge(START, "compute").add_edge("compute", END)
    branch = g.compile()
    wf = fork_join(ForkJoinOptions(branch=branch, join="quorum", quorum=1), name="fj_late")
    async with Runtime(f"sqlite:///{tmp_path}/fj.db", workflows=[wf, branch]) as rt:
        res = await rt.run(wf, {"branches": [{"x": 1}, {"x": 2}]})
    assert res.status.value == "COMPLETED", res.error
    assert [r["status"] for r in res.state["results"]] == ["COMPLETED", "COMPLETED"]
    assert [r["state"]["y"] for r in res.state["results"]] == [10, 20]
