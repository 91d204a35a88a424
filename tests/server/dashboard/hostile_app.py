"""An app whose every user-controlled string is hostile, for the dashboard's injection tests
(``uvicorn --factory``; ``start(..., app=HOSTILE_APP)``): a workflow and its nodes named with
markup, and runs whose input, state, events, interrupt, approval reason and error carry
``PAYLOAD`` (markup, a ``javascript:`` URL, quotes, a right-to-left override, U+2028).

Any payload that ran would set ``window.__pwned``; the tests check it stays unset.

* ``EVIL_WORKFLOW``: plan → ask a person (``interrupt``) → pay (a tool call that needs an
  approval with a hostile reason) → explode (raises with a hostile message) when the input
  says ``{"crash": true}``.
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

PAYLOAD = (
    "\"'><img src=x onerror=\"window.__pwned='img'\">"
    "<script>window.__pwned='script'</script>"
    "javascript:window.__pwned='url'//"
    "<svg onload=\"window.__pwned='svg'\"></svg>"
    " \u202etxt.exe \u2028 after"
)
"""Markup, attribute breakers, a javascript: URL, RLO and U+2028: everything the dashboard shows
from a run."""

EVIL_WORKFLOW = "wf<img src=x onerror=\"window.__pwned='wf'\">"
EVIL_NODES = (
    "plan<script>window.__pwned='node'</script>",
    "ask\"'><b>",
    "pay\u202e",
    "explode",
)


@tool(scope="write", idempotent=True)
def pay(note: str) -> str:
    """Pay with a hostile note."""
    return f"paid {note}"


class HostileReason(GovernancePart):
    async def before_call(self, scope: Any, call: Any) -> None:
        if await granted(scope, call) is None:
            await request_approval(scope, call, reason=PAYLOAD, rule=ApprovalRule())


tools = ToolExecutor([pay])


class Evil(TypedDict, total=False):
    crash: bool
    note: str
    plan: str
    told: Any
    paid: str
    blob: dict[str, Any]


def plan(state: Evil, ctx: RunContext) -> dict[str, Any]:
    ctx.emit(PAYLOAD, {PAYLOAD: PAYLOAD, "href": "javascript:window.__pwned='ev'"})
    return {"plan": PAYLOAD, "blob": {PAYLOAD: [PAYLOAD, {"x": PAYLOAD}]}}


def ask(state: Evil) -> dict[str, Any]:
    told = interrupt({"question": PAYLOAD, PAYLOAD: "key"})
    return {"told": told}


async def pay_node(state: Evil, ctx: RunContext) -> dict[str, Any]:
    if state.get("crash"):
        raise RuntimeError(PAYLOAD)
    res = await tools.call("pay", {"note": PAYLOAD}, ctx=ctx)
    return {"paid": str(res.value if res.ok else res.error)}


graph = Graph(Evil, name=EVIL_WORKFLOW)
graph.add_node(EVIL_NODES[0], plan)
graph.add_node(EVIL_NODES[1], ask)
graph.add_node(EVIL_NODES[2], pay_node)
graph.add_edge(START, EVIL_NODES[0])
graph.add_conditional_edges(
    EVIL_NODES[0],
    lambda s: "skip" if s.get("crash") else "ask",
    {"ask": EVIL_NODES[1], "skip": EVIL_NODES[2]},
)
graph.add_edge(EVIL_NODES[1], EVIL_NODES[2]).add_edge(EVIL_NODES[2], END)
evil = graph.compile(governance=Governance(parts=[HostileReason()]))

WORKFLOWS = [evil]


def app() -> FastAPI:
    store = os.environ.get("TETHER_DASHBOARD_STORE", "sqlite:///.tether/dashboard.db")
    return create_app(ServerSettings(store=store, workflows=WORKFLOWS, embedded_workers=2))
