"""Two tasks of one run deriving the same idempotency key at the same time make one call: the
second waits for the first (in flight in this process, not a crash) and gets its outcome,
whether the tool is idempotent or not, in one node (call_many) or in parallel branches."""

from __future__ import annotations

import asyncio
import operator
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest

from tests.tools.runs import sqlite_runtime, until
from tether import END, START, Graph, RunContext, RunStatus
from tether.core.journal import IN_FLIGHT
from tether.tools import ToolExecutor, tool


class S(TypedDict, total=False):
    out: Annotated[list[Any], operator.add]


@pytest.mark.parametrize("idempotent", [False, True])
async def test_one_call_for_one_key_at_a_time(tmp_path: Path, idempotent: bool) -> None:
    ran: list[str] = []
    runs: list[str] = []

    @tool(scope="write", idempotent=idempotent, idempotency_key=lambda a: f"r-{a['order_id']}")
    async def refund(order_id: str) -> str:
        """Refund an order."""
        ran.append(order_id)
        # in flight until the other task of the run reached the same key (or ended)
        await until(lambda: IN_FLIGHT.waiting(runs[-1], "tool:refund:r-1") > 0 or len(ran) > 1)
        return f"refunded {order_id}"

    tools = ToolExecutor([refund])

    async def many(state: Any, ctx: RunContext) -> dict[str, Any]:
        runs.append(ctx.run_id)
        rs = await tools.call_many([("refund", {"order_id": "1"})] * 2, ctx=ctx)
        return {"out": [r.value for r in rs]}

    def branch(name: str) -> Any:
        async def b(state: Any, ctx: RunContext) -> dict[str, Any]:
            runs.append(ctx.run_id)
            return {"out": [(await tools.call("refund", {"order_id": "1"}, ctx=ctx)).value]}

        return b

    one = Graph(S, name="many")
    one.add_node("m", many).add_edge(START, "m").add_edge("m", END)
    two = Graph(S, name="branches")
    two.add_node("a", branch("a")).add_node("b", branch("b"))
    two.add_edge(START, "a").add_edge(START, "b").add_edge("a", END).add_edge("b", END)
    workflows = [one.compile(), two.compile()]
    async with sqlite_runtime(tmp_path, *workflows) as rt:
        for wf in workflows:
            ran.clear()
            res = await asyncio.wait_for(rt.run(wf, {}), 10)
            assert res.status is RunStatus.COMPLETED, res.escalation or res.error
            assert res.state["out"] == ["refunded 1", "refunded 1"]
            assert ran == ["1"], "one refund"
