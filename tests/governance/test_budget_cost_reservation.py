"""A cost budget reserves each model call's cost before the call. ``Model.projected`` priced
the call by its bare model name while price tables are keyed ``provider:name`` (as
``finalize`` prices the answer), so a priced call reserved no cost: the budget was checked
only after money was spent, and ten calls fanned out at once all passed a $50 budget and
spent $209. A fallback chain and a cascade had no price of their own either."""

from __future__ import annotations

import logging
from typing import Annotated, Any, TypedDict

import pytest

from tether import END, START, Graph, RunStatus, Runtime, Send
from tether.core.reducers import add
from tether.governance import Budget, Governance
from tether.llm.cascade import CascadeModel
from tether.llm.fakes import FunctionModel
from tether.llm.pricing import PriceTable
from tether.llm.request import build_request
from tether.llm.wrappers import FallbackModel

DOLLAR_A_TOKEN = (1_000_000.0, 1_000_000.0)  # per million tokens


def priced(name: str, answer: str = "word " * 10) -> FunctionModel:
    model = FunctionModel(lambda r: answer, name=name)
    model.prices = PriceTable({f"function:{name}": DOLLAR_A_TOKEN})
    return model


class S(TypedDict, total=False):
    calls: Annotated[int, add]
    i: int


async def test_calls_fanned_out_at_once_cannot_pass_a_cost_budget_together() -> None:
    model = priced("pricey")

    async def ask(state: S) -> dict[str, Any]:
        await model.chat(f"question {state.get('i')}", max_tokens=12)
        return {"calls": 1}

    g = Graph(S, name="fan_out")
    g.add_node("ask", ask)
    g.add_conditional_edges(START, lambda s: [Send("ask", {"i": i}) for i in range(10)], ["ask"])
    g.add_edge("ask", END)
    wf = g.compile(governance=Governance(budget=Budget(cost=50.0)))
    async with Runtime("memory://") as rt:
        res = await rt.run(wf, {})
        ledger = await rt.store.get_ledger(f"run:{res.run_id}")  # type: ignore[attr-defined]
    assert res.status is RunStatus.ESCALATED
    assert res.escalation is not None and res.escalation["details"]["dimension"] == "cost"
    assert ledger.used["cost"] <= 50.0  # each call held its price before it ran


def test_a_priced_call_projects_its_cost() -> None:
    request = build_request("question 1", max_tokens=12)
    assert priced("pricey").projected(request)["cost"] == 15.0  # 3 prompt + 12 answer tokens


def test_a_fallback_chain_projects_its_costliest_model_and_a_cascade_both() -> None:
    request = build_request("question 1", max_tokens=12)
    cheap = FunctionModel(lambda r: "ok", name="cheap")
    cheap.prices = PriceTable({"function:cheap": (0.0, 0.0)})
    chain = FallbackModel([cheap, priced("pricey")])
    assert chain.projected(request)["cost"] == 15.0
    assert CascadeModel(priced("small"), priced("large")).projected(request)["cost"] == 30.0


async def test_a_cost_budget_over_a_model_without_price_is_warned_about(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Before: a cost limit over a model missing from the price table (a self-hosted
    OpenAI-compatible server, say) held nothing, silently."""
    model = FunctionModel(lambda r: "ok", name="unpriced")
    model.prices = PriceTable({})  # no price for it

    async def ask(state: S) -> dict[str, Any]:
        await model.chat("question", max_tokens=12)
        await model.chat("question again", max_tokens=12)
        return {"calls": 2}

    g = Graph(S, name="unpriced")
    g.add_node("ask", ask).add_edge(START, "ask").add_edge("ask", END)
    wf = g.compile(governance=Governance(budget=Budget(cost=5.0)))
    with caplog.at_level(logging.WARNING, logger="tether.governance.budget"):
        async with Runtime("memory://") as rt:
            assert (await rt.run(wf, {})).status is RunStatus.COMPLETED
    warned = [r.getMessage() for r in caplog.records if "has no price" in r.getMessage()]
    assert len(warned) == 1 and "function:unpriced" in warned[0]
