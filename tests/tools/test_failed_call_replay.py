"""A journaled tool call that failed is one outcome, like one that succeeded: the node re-run
in the same attempt (resumed after an interrupt) gets the same failure back without a second
call; a new attempt (the node's retry policy, the run retried after it failed) calls again,
except a call that is not idempotent and may have taken effect (it timed out): that escalates
for a human, as an intent without a result does."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from tests.tools.runs import one_node, sqlite_runtime
from tether import RetryPolicy, RunContext, RunStatus
from tether.graph.context import interrupt
from tether.tools import ToolExecutor, ToolRetry, tool

ONCE = ToolRetry(max_attempts=1)
NODE_RETRY = RetryPolicy(max_attempts=2, initial_interval=0.001, jitter=False)


def payments(sent: list[str], *, hangs: bool) -> ToolExecutor:
    """``pay`` (not idempotent) makes its effect, then hangs past its timeout or fails."""
    never = asyncio.Event()

    @tool(scope="write", timeout=0.05, retry=ONCE)
    async def pay(to: str) -> str:
        """Send money."""
        sent.append(to)  # the effect happens...
        if hangs:
            await never.wait()  # ...and the answer never comes: ToolTimeoutError
        raise RuntimeError("card declined")

    return ToolExecutor([pay])


async def test_a_failed_write_is_replayed_after_a_resume_not_sent_again(tmp_path: Path) -> None:
    for hangs in (True, False):
        sent: list[str] = []
        tools = payments(sent, hangs=hangs)

        async def act(state: Any, ctx: RunContext, tools: ToolExecutor = tools) -> dict[str, Any]:
            r = await tools.call("pay", {"to": "bob"}, ctx=ctx)
            answer = interrupt({"failed": type(r.error).__name__})
            return {"out": [r.ok, type(r.error).__name__, str(r.error), answer]}

        wf = one_node(f"pay{hangs}", act)
        async with sqlite_runtime(tmp_path, wf) as rt:
            parked = await rt.run(wf, {})
            assert parked.status is RunStatus.ESCALATED and sent == ["bob"]
            done = await rt.resume(parked.run_id, "go on")
            assert done.status is RunStatus.COMPLETED, done.error
            error = "ToolTimeoutError" if hangs else "ToolError"
            assert done.state["out"][:2] == [False, error]
            assert done.state["out"][3] == "go on"
            assert sent == ["bob"], "the payment was sent once"
            assert parked.escalation is not None
            assert done.state["out"][2] and "pay" in done.state["out"][2]


async def test_a_new_attempt_calls_again_unless_the_outcome_is_unknown(tmp_path: Path) -> None:
    sent: list[str] = []
    declined = payments(sent, hangs=False)
    timed_out = payments(sent, hangs=True)

    def node(tools: ToolExecutor) -> Any:
        async def act(state: Any, ctx: RunContext) -> dict[str, Any]:
            return {"out": (await tools.call("pay", {"to": "ann"}, ctx=ctx)).unwrap()}

        return act

    retried = one_node("retried", node(declined), NODE_RETRY)
    unknown = one_node("unknown", node(timed_out), NODE_RETRY)
    async with sqlite_runtime(tmp_path, retried, unknown) as rt:
        res = await rt.run(retried, {})
        assert res.status is RunStatus.FAILED
        assert sent == ["ann", "ann"], "declined: the node's retry is a new attempt"

        sent.clear()
        res = await rt.run(unknown, {})
        assert res.status is RunStatus.ESCALATED, res.error
        assert res.escalation is not None
        assert res.escalation["kind"] == "unknown_effect_outcome"
        assert "ToolTimeoutError" in res.escalation["reason"]
        assert sent == ["ann"], "timed out: not sent again by the retry"

        res = await rt.resume(res.run_id, {"retry": True})  # a human checked: send it again
        assert sent == ["ann", "ann"]
        # it timed out again: the node's retry asks the human again instead of a third send
        assert res.status is RunStatus.ESCALATED and sent == ["ann", "ann"]


async def test_a_run_retried_after_it_failed_calls_again(tmp_path: Path) -> None:
    sent: list[str] = []
    tools = payments(sent, hangs=False)

    async def act(state: Any, ctx: RunContext) -> dict[str, Any]:
        return {"out": (await tools.call("pay", {"to": "eve"}, ctx=ctx)).unwrap()}

    wf = one_node("operator", act)
    async with sqlite_runtime(tmp_path, wf) as rt:
        res = await rt.run(wf, {})
        assert res.status is RunStatus.FAILED and sent == ["eve"]
        res = await rt.resume(res.run_id)  # an operator retries the failed run
        assert res.status is RunStatus.FAILED
        assert sent == ["eve", "eve"], "a retried run is a new attempt, not a replay"
