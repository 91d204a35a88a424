"""What a tool does that the executor must not be confused by: a CancelledError out of a tool
whose call nobody cancelled, an exception whose str() raises, several calls of a batch raising,
and a circuit breaker's half-open trial that ends without a verdict."""

from __future__ import annotations

import asyncio
import gc
from pathlib import Path
from typing import Any

import pytest

from tests.tools.runs import one_node, sqlite_runtime
from tether import RunContext, RunStatus
from tether.core.errors import CircuitOpenError, PolicyViolationError, ToolRateLimitedError
from tether.tools import BreakerPolicy, BreakerState, RateLimit, ToolExecutor, ToolRetry, tool

ONCE = ToolRetry(max_attempts=1)


@tool(scope="read")
async def fetch(url: str) -> str:
    """Awaits a request a shared pool dropped (cancelled), so CancelledError comes out."""
    fut = asyncio.get_running_loop().create_future()
    fut.cancel()
    return str(await fut)


async def test_a_cancelled_error_out_of_a_tool_is_its_failure(tmp_path: Path) -> None:
    tools = ToolExecutor([fetch])
    res = await tools.call("fetch", {"url": "x"})
    assert not res.ok and "CancelledError" in str(res.error)

    async def act(state: Any, ctx: RunContext) -> dict[str, Any]:
        r = await tools.call("fetch", {"url": "x"}, ctx=ctx)
        return {"out": [r.ok, type(r.error).__name__]}

    wf = one_node("cancelled", act)
    async with sqlite_runtime(tmp_path, wf) as rt:
        done = await asyncio.wait_for(rt.run(wf, {}), 10)
        assert done.status is RunStatus.COMPLETED, done.error
        assert done.state["out"] == [False, "ToolError"]


async def test_a_cancelled_call_still_cancels() -> None:
    started, never = asyncio.Event(), asyncio.Event()

    @tool(scope="read")
    async def slow(q: str) -> str:
        """Waits."""
        started.set()
        await never.wait()
        return q

    task = asyncio.create_task(ToolExecutor([slow]).call("slow", {"q": "x"}))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


class BadStr(Exception):
    def __str__(self) -> str:
        raise AttributeError("nope")


async def test_an_error_whose_str_raises_is_described() -> None:
    @tool(scope="read")
    def broken(x: int) -> int:
        """Raises an exception nobody can print."""
        raise BadStr

    res = await ToolExecutor([broken]).call("broken", {"x": 1})
    assert not res.ok
    assert "BadStr" in str(res.error) and "str() raised AttributeError" in str(res.error)


class Stop(BaseException):
    """Something that is not a tool error: out of the key rule, it leaves the call (out of the
    tool it would fail the call: ``test_exiting_tools``)."""


def _stop_key(args: dict[str, Any]) -> str:
    raise Stop(args["i"])


async def test_every_outcome_of_a_batch_is_retrieved() -> None:
    @tool(scope="read", idempotency_key=_stop_key)
    async def stop(i: int) -> int:
        """Its key rule raises past the executor."""
        return i

    unretrieved: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _loop, context: unretrieved.append(context))
    try:
        with pytest.raises(Stop):
            await ToolExecutor([stop]).call_many([("stop", {"i": 1}), ("stop", {"i": 2})])
        gc.collect()
    finally:
        loop.set_exception_handler(None)
    assert [c["message"] for c in unretrieved] == []


def _svc(ok: dict[str, Any], **options: Any) -> Any:
    @tool(
        scope="read",
        retry=ONCE,
        breaker=BreakerPolicy(failure_threshold=1, reset_timeout=0),
        **options,
    )
    async def svc(q: str) -> str:
        """A service that is down, then up."""
        behaviour = ok["then"]
        if behaviour == "down":
            raise RuntimeError("down")
        if behaviour == "refuse":
            raise PolicyViolationError("not for you")
        if behaviour == "hang":
            ok["started"].set()
            await asyncio.Event().wait()
        return f"ok {q}"

    return svc


async def test_a_trial_without_a_verdict_gives_its_slot_back() -> None:
    ok: dict[str, Any] = {"then": "down", "started": asyncio.Event()}
    svc = _svc(ok)
    tools = ToolExecutor([svc])
    assert not (await tools.call("svc", {"q": "a"})).ok  # opens the breaker
    breaker = tools.breaker(svc)
    assert breaker is not None and breaker.state is BreakerState.OPEN

    ok["then"] = "hang"  # the half-open trial is cancelled
    task = asyncio.create_task(tools.call("svc", {"q": "b"}))
    await ok["started"].wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    ok["then"] = "refuse"  # the trial fails in a way that says nothing of the tool's health
    refused = await tools.call("svc", {"q": "c"})
    assert isinstance(refused.error, PolicyViolationError)
    ok["then"] = "up"
    later = await tools.call("svc", {"q": "d"})
    assert later.ok, later.error
    assert breaker.state is BreakerState.CLOSED


async def test_a_trial_the_rate_limiter_refused_gives_its_slot_back() -> None:
    ok: dict[str, Any] = {"then": "down"}
    svc = _svc(ok, rate_limit=RateLimit(rate=0.001, burst=1, max_wait=0))
    tools = ToolExecutor([svc])
    assert not (await tools.call("svc", {"q": "a"})).ok  # opens the breaker, spends the token
    ok["then"] = "up"
    for _ in range(2):  # the trial, then the next call: the rate limit refuses, not the breaker
        res = await tools.call("svc", {"q": "b"})
        assert isinstance(res.error, ToolRateLimitedError), res.error
        assert not isinstance(res.error, CircuitOpenError)
