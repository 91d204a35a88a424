"""The app the dashboard tests and benchmark serve (``uvicorn --factory``): real workflows on
a SQLite store named by ``TETHER_DASHBOARD_STORE``, executed by the server's embedded worker.

* ``refunds``: plan → refund (a tool call that needs a signed approval) → report; a
  conditional edge sends small amounts straight to ``report``.
* ``ask``: asks a person a question through ``interrupt`` and answers with what it was told.
* ``crash``: a node that raises (a FAILED run).
* ``chatter``: one node that emits ``TETHER_DASHBOARD_EVENTS`` custom events (input
  ``{"events": N}`` overrides it) with multi-line payloads.
* ``quick``: one trivial step.
* ``spend``: asks a person to go ahead (``interrupt``), then records a model call (tokens and
  cost, as a model wrapper's ``model_call`` event does).
"""

from __future__ import annotations

import os
from typing import Any, TypedDict

from fastapi import FastAPI

from tether import END, START, Graph, RunContext, interrupt
from tether.governance import ApprovalRule, Governance, GovernancePart
from tether.governance.approvals import granted, request_approval
from tether.server.app import create_app
from tether.server.settings import ServerSettings
from tether.tools import ToolExecutor, tool


@tool(scope="write", idempotent=True)
def refund(amount: int) -> str:
    """Refund an amount to the customer."""
    return f"refunded {amount}"


class RefundsNeedApproval(GovernancePart):
    async def before_call(self, scope: Any, call: Any) -> None:
        if call.name == "refund" and await granted(scope, call) is None:
            await request_approval(
                scope, call, reason="refunds over 10 need a finance approval", rule=ApprovalRule()
            )


class Refund(TypedDict, total=False):
    amount: int
    plan: str
    receipt: str
    report: str


tools = ToolExecutor([refund])


def plan(state: Refund) -> dict[str, Any]:
    return {"plan": f"refund {state.get('amount', 0)} to the customer"}


def route(state: Refund) -> str:
    return "pay" if state.get("amount", 0) > 10 else "report"


async def pay(state: Refund, ctx: RunContext) -> dict[str, Any]:
    res = await tools.call("refund", {"amount": state.get("amount", 0)}, ctx=ctx)
    if not res.ok:  # a rejected approval: the call is refused
        return {"receipt": f"refused: {res.error}"}
    return {"receipt": str(res.value)}


def report(state: Refund) -> dict[str, Any]:
    return {"report": f"done: {state.get('receipt', 'nothing refunded')}"}


refunds_graph = Graph(Refund, name="refunds")
refunds_graph.add_node("plan", plan, phase="planner")
refunds_graph.add_node("pay", pay, phase="tool")
refunds_graph.add_node("report", report, phase="validator")
refunds_graph.add_edge(START, "plan")
refunds_graph.add_conditional_edges("plan", route, {"pay": "pay", "report": "report"})
refunds_graph.add_edge("pay", "report").add_edge("report", END)
refunds = refunds_graph.compile(governance=Governance(parts=[RefundsNeedApproval()]))


class Ask(TypedDict, total=False):
    question: str
    answer: str


def ask_human(state: Ask) -> dict[str, Any]:
    told = interrupt({"question": state.get("question", "?")})
    return {"answer": f"the human said {told}"}


ask_graph = Graph(Ask, name="ask")
ask_graph.add_node("ask_human", ask_human).add_edge(START, "ask_human").add_edge("ask_human", END)
ask = ask_graph.compile()


class Crash(TypedDict, total=False):
    why: str


def explode(state: Crash) -> dict[str, Any]:
    raise RuntimeError(f"the payment provider is down ({state.get('why', 'no reason')})")


crash_graph = Graph(Crash, name="crash")
crash_graph.add_node("explode", explode).add_edge(START, "explode").add_edge("explode", END)
crash = crash_graph.compile()


class Chatter(TypedDict, total=False):
    events: int
    emitted: int


def chat(state: Chatter, ctx: RunContext) -> dict[str, Any]:
    n = int(state.get("events") or os.environ.get("TETHER_DASHBOARD_EVENTS", "100"))
    for i in range(n):
        ctx.emit(
            "progress", {"i": i, "note": f"line one of {i}\nline two of {i}", "tags": ["a", "b"]}
        )
    return {"emitted": n}


chatter_graph = Graph(Chatter, name="chatter")
chatter_graph.add_node("chat", chat).add_edge(START, "chat").add_edge("chat", END)
chatter = chatter_graph.compile()


class Quick(TypedDict, total=False):
    n: int


quick_graph = Graph(Quick, name="quick")
quick_graph.add_node("bump", lambda s: {"n": s.get("n", 0) + 1})
quick_graph.add_edge(START, "bump").add_edge("bump", END)
quick = quick_graph.compile()


class Spend(TypedDict, total=False):
    go: str


SPENT = {"model": "fake-1", "input_tokens": 1200, "output_tokens": 34, "cost": 0.25}
"""What one ``spend`` run records: 1,234 tokens for $0.250."""


def spend_tokens(state: Spend, ctx: RunContext) -> dict[str, Any]:
    go = interrupt({"question": "spend tokens?"})
    ctx.emit("model_call", dict(SPENT))
    return {"go": str(go)}


spend_graph = Graph(Spend, name="spend")
spend_graph.add_node("spend_tokens", spend_tokens)
spend_graph.add_edge(START, "spend_tokens").add_edge("spend_tokens", END)
spend = spend_graph.compile()

WORKFLOWS = [refunds, ask, crash, chatter, quick, spend]


def app() -> FastAPI:
    store = os.environ.get("TETHER_DASHBOARD_STORE", "sqlite:///.tether/dashboard.db")
    return create_app(ServerSettings(store=store, workflows=WORKFLOWS, embedded_workers=4))
