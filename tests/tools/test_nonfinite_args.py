"""Tool arguments never hold NaN or infinity: pydantic's lax mode reads "nan" as a float, which
no policy comparison decides on (NaN > 500 is false) and which the journal keeps as null. A
call with one is refused as ToolArgumentsError naming the field, nested models included, and
never runs; a deny rule over the amount is never bypassed."""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, TypedDict

import pytest
from pydantic import BaseModel, ConfigDict

from tether import END, START, Graph, RunContext, RunStatus, Runtime
from tether.core.errors import ToolArgumentsError
from tether.governance import Governance, PolicySet, Rule
from tether.tools import ToolExecutor, tool


class Line(BaseModel):
    model_config = ConfigDict(allow_inf_nan=True)  # its own config: the contract checks it
    sku: str
    price: float


@dataclass
class Fee:
    amount: float


@tool
def order(
    total: float,
    lines: list[Line] = [],  # noqa: B006
    fees: dict[str, float] = {},  # noqa: B006
    extra: Any = None,
    fee: Fee | None = None,
    exact: Decimal = Decimal(0),
    cap: float = math.inf,  # the author's default is not the caller's argument
) -> str:
    """Place an order."""
    return "ok"


@pytest.mark.parametrize(
    ("args", "where"),
    [
        ({"total": float("nan")}, "total"),
        ({"total": "nan"}, "total"),
        ({"total": "NaN"}, "total"),
        ({"total": float("inf")}, "total"),
        ({"total": "-Infinity"}, "total"),
        (
            {"total": 1, "lines": [{"sku": "a", "price": 2}, {"sku": "b", "price": "nan"}]},
            "lines.1.price",
        ),
        ({"total": 1, "fees": {"ship": "inf"}}, "fees.ship"),
        ({"total": 1, "extra": {"deep": [1, float("nan")]}}, "extra.deep.1"),
        ({"total": 1, "fee": {"amount": "nan"}}, "fee.amount"),
        ({"total": 1, "exact": "NaN"}, "exact"),
    ],
)
def test_non_finite_arguments_are_refused_naming_the_field(
    args: dict[str, Any], where: str
) -> None:
    with pytest.raises(ToolArgumentsError) as info:
        order.validate(args)
    assert f"{where}: Input should be a finite number" in str(info.value)
    loc = [int(p) if p.isdigit() else p for p in where.split(".")]
    assert [e["loc"] for e in info.value.errors] == [loc]


def test_finite_arguments_and_defaults_pass() -> None:
    clean = order.validate(
        {"total": "12.5", "lines": [{"sku": "a", "price": 2}], "fees": {"ship": 1}, "exact": "3.1"}
    )
    assert clean["total"] == 12.5 and clean["lines"][0].price == 2.0
    assert clean["cap"] == math.inf and clean["exact"] == Decimal("3.1")


refunds: list[float] = []


@tool(scope="write", idempotent=True)
def refund(account: str, amount: float) -> str:
    """Refund an account."""
    refunds.append(amount)
    return "ok"


class S(TypedDict, total=False):
    seen: list[list[Any]]


async def test_nan_never_gets_past_a_deny_rule(tmp_path: Path) -> None:
    tools = ToolExecutor([refund])
    rules = PolicySet(
        [Rule("no-big-refunds", "deny", tool="refund", args={"$.amount": {">": 500}})]
    )

    async def agent(state: S, ctx: RunContext) -> dict[str, Any]:
        seen = []
        for amount in [900, "nan", float("nan"), "NaN", float("inf"), 50]:
            res = await tools.call("refund", {"account": "ACC-1", "amount": amount}, ctx=ctx)
            seen.append([res.ok, type(res.error).__name__ if res.error else res.value])
        return {"seen": seen}

    g = Graph(S, name="refunds")
    g.add_node("agent", agent)
    g.add_edge(START, "agent").add_edge("agent", END)
    wf = g.compile(governance=Governance(policies=rules))
    refunds.clear()
    async with Runtime(f"sqlite:///{tmp_path / 't.db'}", workflows=[wf]) as rt:
        res = await rt.run(wf, {})
        effects = await rt.store.list_effects(res.run_id)
    assert res.status is RunStatus.COMPLETED
    assert res.state["seen"] == [
        [False, "PolicyViolationError"],
        *[[False, "ToolArgumentsError"]] * 4,
        [True, "ok"],
    ]
    assert refunds == [50.0]
    assert [e.request["args"]["amount"] for e in effects] == [50.0]  # nothing journaled as null
