"""A model's JSON may hold any integer (``12345678901234567890123``; a provider's ``json.loads``
gives it as a Python int), and pydantic takes it for an ``int`` argument. The journal keeps
integers of 64 bits at most, so inside a run such a call raised ``UnstorableValueError`` out of
``executor.call`` (the node failed, telling the model nothing; outside a run the same call
ran). A call with an integer beyond 64 bits is refused as ``ToolArgumentsError`` naming where it
sits, in and out of a run, for local and MCP tools alike, and never runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from tests.tools.runs import one_node, sqlite_runtime
from tether import RunContext, RunStatus
from tether.tools import ToolArgumentsError, ToolExecutor, tool
from tether.tools.mcp.client import McpToolContract
from tether.tools.mcp.schema import ArgumentsSchema, args_model_for

HUGE = 12345678901234567890123
calls: list[Any] = []


class Line(BaseModel):
    sku: str
    qty: int


@tool(scope="write", idempotent=True)
def pay(cents: int, lines: list[Line] = [], meta: dict[str, Any] = {}) -> str:  # noqa: B006
    """Pay an amount."""
    calls.append(cents)
    return f"paid {cents}"


def _remote() -> McpToolContract:
    schema = ArgumentsSchema(
        {"type": "object", "properties": {"cents": {"type": "integer"}}}, tool="remote.pay"
    )

    async def never(**kwargs: Any) -> Any:
        calls.append(kwargs)
        return "sent"

    return McpToolContract(
        name="remote.pay",
        description="Pay remotely.",
        fn=never,
        args_model=args_model_for("remote.pay", schema),
        is_async=True,
        arguments_schema=schema,
    )


BAD = [
    ({"cents": HUGE}, ["cents"]),
    ({"cents": -(2**63) - 1}, ["cents"]),
    (
        {"cents": 1, "lines": [{"sku": "a", "qty": 1}, {"sku": "b", "qty": HUGE}]},
        ["lines", 1, "qty"],
    ),
    ({"cents": 1, "meta": {"n": [HUGE]}}, ["meta", "n", 0]),
]


@pytest.mark.parametrize(("args", "loc"), BAD)
def test_validate_refuses_an_integer_beyond_64_bits(args: dict[str, Any], loc: list[Any]) -> None:
    with pytest.raises(ToolArgumentsError) as caught:
        pay.validate(args)
    assert caught.value.errors is not None
    assert [e["loc"] for e in caught.value.errors] == [loc]
    assert "64 bits" in str(caught.value) and "as a string" in str(caught.value)


def test_the_64_bit_edges_pass() -> None:
    assert pay.validate({"cents": 2**64 - 1})["cents"] == 2**64 - 1
    assert pay.validate({"cents": -(2**63)})["cents"] == -(2**63)


def test_an_mcp_tool_refuses_it_too() -> None:
    with pytest.raises(ToolArgumentsError) as caught:
        _remote().validate({"cents": HUGE})
    assert caught.value.errors is not None and caught.value.errors[0]["loc"] == ["cents"]


async def test_inside_a_run_it_comes_back_as_tool_arguments_error(tmp_path: Path) -> None:
    calls.clear()
    tools = ToolExecutor([pay, _remote()])

    async def act(state: Any, ctx: RunContext) -> dict[str, Any]:
        out = []
        for name in ("pay", "remote.pay"):
            res = await tools.call(name, {"cents": HUGE}, ctx=ctx)
            out.append([res.ok, type(res.error).__name__, res.for_model()])
        good = await tools.call("pay", {"cents": 5}, ctx=ctx)
        return {"out": [*out, good.value]}

    wf = one_node("huge_int", act)
    async with sqlite_runtime(tmp_path, wf) as rt:
        done = await rt.run(wf, {})
    assert done.status is RunStatus.COMPLETED, done.error
    *refused, good = done.state["out"]
    for ok, kind, text in refused:
        assert (ok, kind) == (False, "ToolArgumentsError")
        assert "cents" in text and "64 bits" in text
    assert good == "paid 5" and calls == [5]
