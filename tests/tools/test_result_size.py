"""A tool's result and arguments are bounded (``max_result_bytes`` / ``max_args_bytes``, bytes of
their JSON): without it a tool returning 4 MiB had it journaled, kept in state and shown to the
model. Over the limit a result is a ToolResultTooLargeError (not retried), arguments a
ToolArgumentsError; neither lands in the journal; the run goes on with the error."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.tools.runs import one_node, sqlite_runtime
from tether import RunContext, RunStatus
from tether.core.errors import ConfigurationError
from tether.graph.context import interrupt
from tether.tools import (
    DEFAULT_MAX_RESULT_BYTES,
    ToolArgumentsError,
    ToolExecutor,
    ToolResultTooLargeError,
    ToolRetry,
    tool,
)
from tether.tools.limits import MiB

calls: list[int] = []


@tool(retry=ToolRetry(max_attempts=3, initial_interval=0.0))
def dump(n: int) -> str:
    """Return n bytes."""
    calls.append(n)
    return "x" * n


@tool(max_result_bytes=8 * MiB)
def screenshot(n: int) -> str:
    """A tool whose results are large by design."""
    return "x" * n


@tool(max_result_bytes=None)
def unbounded(n: int) -> str:
    """No limit at all."""
    return "x" * n


@tool(scope="write", max_result_bytes=100)
def export(n: int) -> list[str]:
    """A write tool with a small limit of its own."""
    return ["y" * n]


@tool
def store(text: str) -> int:
    """Keep a text."""
    calls.append(len(text))
    return len(text)


async def test_a_result_over_the_limit_is_an_error_not_retried() -> None:
    calls.clear()
    tools = ToolExecutor([dump])
    assert tools.max_result_bytes == DEFAULT_MAX_RESULT_BYTES == MiB
    ok = await tools.call("dump", {"n": MiB - 2})  # '"' + n + '"': exactly the limit
    assert ok.ok and len(ok.value) == MiB - 2
    r = await tools.call("dump", {"n": 2 * MiB})
    assert not r.ok and r.value is None
    err = r.error
    assert isinstance(err, ToolResultTooLargeError) and not err.retryable
    assert (err.size, err.limit, err.tool) == (2 * MiB + 2, MiB, "dump")
    text = str(err)
    assert f"{2 * MiB + 2} bytes" in text and f"limit of {MiB} bytes" in text
    assert "@tool(max_result_bytes=N)" in text and "ToolExecutor(max_result_bytes=N)" in text
    assert calls == [MiB - 2, 2 * MiB], "called once: an oversized answer is not retried"
    assert "ToolResultTooLargeError" in r.for_model()
    with pytest.raises(ToolResultTooLargeError):
        r.unwrap()


async def test_a_tool_limit_wins_over_the_executor_one() -> None:
    tools = ToolExecutor([screenshot, unbounded, export], max_result_bytes=1000)
    assert (await tools.call("screenshot", {"n": 5 * MiB})).ok  # its own 8 MiB
    assert (await tools.call("unbounded", {"n": 20 * MiB})).ok  # its own None
    small = await tools.call("export", {"n": 200})  # its own 100, under the executor's 1000
    assert isinstance(small.error, ToolResultTooLargeError) and small.error.limit == 100
    assert "its effect happened" in str(small.error), "a write tool ran: say so"
    assert (await ToolExecutor([dump], max_result_bytes=None).call("dump", {"n": 3 * MiB})).ok
    refused = await ToolExecutor([dump], max_result_bytes=10).call("dump", {"n": 9})
    assert refused.error is not None and refused.error.limit == 10  # 11 bytes of JSON
    assert "its effect" not in str(refused.error), "a read tool has no effect to warn of"


async def test_arguments_over_the_limit_go_back_to_the_model_and_the_tool_never_runs() -> None:
    calls.clear()
    r = await ToolExecutor([store], max_args_bytes=1000).call("store", {"text": "z" * 2000})
    assert isinstance(r.error, ToolArgumentsError)
    assert r.error.errors[0]["type"] == "too_large"
    assert "over the limit of 1000 bytes (max_args_bytes)" in str(r.error)
    assert calls == []
    assert (await ToolExecutor([store]).call("store", {"text": "z" * 2000})).ok
    assert calls == [2000]


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "1MB"])
def test_a_limit_that_is_not_a_byte_count_is_refused(bad: Any) -> None:
    with pytest.raises(ConfigurationError, match="max_result_bytes must be a number of bytes"):
        ToolExecutor([dump], max_result_bytes=bad)
    with pytest.raises(ConfigurationError, match="max_args_bytes must be a number of bytes"):
        ToolExecutor([dump], max_args_bytes=bad)
    with pytest.raises(ConfigurationError, match="'big': max_result_bytes"):
        tool(lambda: 1, name="big", max_result_bytes=bad)


def _stored(tmp_path: Path) -> int:
    return sum(f.stat().st_size for f in tmp_path.iterdir() if f.is_file())


async def test_in_a_run_nothing_oversized_is_journaled_and_a_replay_gives_the_same_error(
    tmp_path: Path,
) -> None:
    calls.clear()
    tools = ToolExecutor([dump, store], max_args_bytes=MiB)

    async def act(state: Any, ctx: RunContext) -> dict[str, Any]:
        big = await tools.call("dump", {"n": 4 * MiB}, ctx=ctx)
        huge_args = await tools.call("store", {"text": "a" * 4 * MiB}, ctx=ctx)
        answer = interrupt({"why": str(big.error)})  # parks; the node re-runs on resume
        return {"out": [type(big.error).__name__, type(huge_args.error).__name__, answer]}

    wf = one_node("sizes", act)
    async with sqlite_runtime(tmp_path, wf) as rt:
        parked = await rt.run(wf, {})
        assert parked.status is RunStatus.ESCALATED
        done = await rt.resume(parked.run_id, "ok")
        assert done.status is RunStatus.COMPLETED, done.error
        assert done.state["out"] == ["ToolResultTooLargeError", "ToolArgumentsError", "ok"]
    assert calls == [4 * MiB], "the re-run node got the journaled error, not a second call"
    assert _stored(tmp_path) < MiB, "neither the result nor the arguments were stored"
