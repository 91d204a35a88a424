"""A governed refund workflow whose refunds need a signed approval (shared by the approval
tests)."""

from __future__ import annotations

from typing import Any, TypedDict

from tether import END, START, Graph, RunContext
from tether.core.governor import GovernedCall
from tether.governance import ApprovalRule, Governance, GovernancePart, RunScope
from tether.governance.approvals import granted, request_approval
from tether.governance.scope import AuditSink
from tether.graph.builder import Workflow
from tether.tools import ToolExecutor, tool

SENT: list[int] = []


class S(TypedDict, total=False):
    amount: int
    times: int
    out: list[str]


@tool(scope="write", idempotent=True)
def refund(amount: int) -> str:
    """Refund an amount."""
    SENT.append(amount)
    return f"refunded {amount}"


class RefundsNeedApproval(GovernancePart):
    """What the policy engine does for an ``escalate`` decision."""

    def __init__(self, rule: ApprovalRule | None = None) -> None:
        self.rule = rule

    async def before_call(self, scope: RunScope, call: GovernedCall) -> None:
        if call.kind != "tool" or call.name != "refund":
            return
        if await granted(scope, call) is None:
            await request_approval(scope, call, reason="refunds need sign-off", rule=self.rule)


class Recorded(AuditSink):
    def __init__(self) -> None:
        self.kinds: list[str] = []

    async def record(self, scope: RunScope, kind: str, data: dict[str, Any]) -> None:
        self.kinds.append(kind)


def build(
    rule: ApprovalRule | None = None, audit: AuditSink | None = None, name: str = "refunds"
) -> Workflow:
    tools = ToolExecutor([refund])

    async def agent(state: S, ctx: RunContext) -> dict[str, Any]:
        out = []
        for _ in range(state.get("times", 1)):
            res = await tools.call("refund", {"amount": state["amount"]}, ctx=ctx)
            out.append(str(res.value) if res.ok else type(res.error).__name__)
        return {"out": out}

    g = Graph(S, name=name)
    g.add_node("agent", agent)
    g.add_edge(START, "agent").add_edge("agent", END)
    return g.compile(governance=Governance(parts=[RefundsNeedApproval(rule)], audit=audit))
