"""While a step runs, the run's status reads what the step does (EXECUTING, WAITING_FOR_TOOL,
VALIDATING), whichever way the run got there: claimed after a submit, or retried after a failure.
Observed from inside the node, through the store."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypedDict

import pytest

from tether import END, START, Graph, RunContext, RunResult, RunStatus, Runtime
from tether.store.protocol import RunStore


class S(TypedDict, total=False):
    n: int


def _observer(seen: list[RunStatus], fail_first: bool = False) -> Any:
    async def look(s: Any, ctx: RunContext) -> dict[str, Any]:
        seen.append((await ctx._host.get_run(ctx.run_id)).status)
        if fail_first and len(seen) == 1:
            raise RuntimeError("first try fails")
        return {"n": 1}

    return look


@pytest.mark.parametrize(
    ("phase", "expected"),
    [
        ("agent", RunStatus.EXECUTING),
        ("tool", RunStatus.WAITING_FOR_TOOL),
        ("validator", RunStatus.VALIDATING),
    ],
)
async def test_a_claimed_submitted_run_is_not_planned_while_its_first_step_runs(
    shared_store: Callable[[], RunStore], phase: str, expected: RunStatus
) -> None:
    seen: list[RunStatus] = []
    g = Graph(S, name=f"claimed_{phase}")
    g.add_node("first", _observer(seen), phase=phase).add_edge(START, "first")
    g.add_edge("first", END)
    wf = g.compile()
    async with Runtime(shared_store(), workflows=[wf], recover=False) as rt:
        handle = await rt.submit(wf, {})
        assert (await rt.get_run(handle.run_id)).status is RunStatus.PLANNED
        assert await rt.recover_once() == [handle.run_id]
        res = await rt.wait(handle.run_id, timeout=120)
        assert res.status is RunStatus.COMPLETED, res.error
        assert seen == [expected]
        moves = [(t.src, t.dst) for t in await rt.store.list_transitions(handle.run_id)]
        assert (RunStatus.PLANNED, RunStatus.EXECUTING) in moves
        assert moves[-1][1] is RunStatus.COMPLETED


async def test_a_retried_tool_step_reads_waiting_for_tool(rt: Runtime) -> None:
    seen: list[RunStatus] = []
    g = Graph(S, name="retry_tool")
    g.add_node("call", _observer(seen, fail_first=True), phase="tool")
    g.add_edge(START, "call").add_edge("call", END)
    wf = g.compile()
    res = await rt.run(wf, {})
    assert res.status is RunStatus.FAILED
    done = await rt.resume(res.run_id)
    assert isinstance(done, RunResult) and done.status is RunStatus.COMPLETED
    assert seen == [RunStatus.WAITING_FOR_TOOL, RunStatus.WAITING_FOR_TOOL]
