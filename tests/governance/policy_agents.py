"""Shared pieces of the policy and injection tests: a fake payment ledger's tools, an agent node
that does whatever its model asks (a planner loop), and an audit sink that keeps what it saw."""

from __future__ import annotations

from typing import Any, TypedDict

from tether import END, START, Graph, RunContext
from tether.core.messages import Message
from tether.governance import AuditSink, Governance, GovernancePart, RunScope
from tether.llm.model import Model
from tether.tools import ToolExecutor, tool


class S(TypedDict, total=False):
    request: str
    log: list[dict[str, Any]]


class Ledger:
    """What the tools really did."""

    def __init__(self) -> None:
        self.refunds: list[tuple[str, float]] = []
        self.emails: list[tuple[str, str]] = []
        self.deleted: list[str] = []


def make_tools(ledger: Ledger, ticket_text: str = "") -> ToolExecutor:
    @tool(scope="read")
    def read_ticket(ticket_id: str) -> dict[str, Any]:
        """Read a support ticket."""
        return {"id": ticket_id, "customer": "ACC-1001", "body": ticket_text}

    @tool(scope="read")
    def lookup(order: int) -> dict[str, Any]:
        """Look an order up."""
        return {"order": order, "status": "delivered"}

    @tool(scope="write", idempotent=True)
    def refund(account: str, amount: float) -> str:
        """Refund an account."""
        ledger.refunds.append((account, amount))
        return f"refunded {amount} to {account}"

    @tool(scope="write", idempotent=True)
    def send_email(to: str, body: str) -> str:
        """Send an e-mail."""
        ledger.emails.append((to, body))
        return "sent"

    @tool(scope="destructive", idempotent=True)
    def delete_account(account: str) -> str:
        """Delete an account."""
        ledger.deleted.append(account)
        return "deleted"

    return ToolExecutor([read_ticket, lookup, refund, send_email, delete_account])


def agent_workflow(model: Model, tools: ToolExecutor, gov: Governance, turns: int = 6) -> Any:
    """One node: ask the model, run every tool call it makes, hand the results back (errors as
    the planner sees them), until it answers with text."""

    async def agent(state: S, ctx: RunContext) -> dict[str, Any]:
        messages = [Message.system("You are a support agent."), Message.user(state["request"])]
        log: list[dict[str, Any]] = []
        specs = tools.registry.specs()
        for _ in range(turns):
            said = await model.chat(messages, tools=specs)
            if not said.tool_calls:
                log.append({"final": said.text})
                break
            messages.append(said.message())
            for call in said.tool_calls:
                res = await tools.call(call.name, call.arguments, ctx=ctx)
                err = type(res.error).__name__ if res.error is not None else None
                log.append({"tool": call.name, "ok": res.ok, "error": err})
                messages.append(Message.tool(call.id, res.for_model(), name=call.name))
        return {"log": log}

    g = Graph(S, name="support")
    g.add_node("agent", agent)
    g.add_edge(START, "agent").add_edge("agent", END)
    return g.compile(governance=gov)


class Kept(AuditSink):
    """An audit sink that keeps each record."""

    def __init__(self) -> None:
        self.records: list[tuple[str, dict[str, Any]]] = []

    async def record(self, scope: RunScope, kind: str, data: dict[str, Any]) -> None:
        self.records.append((kind, data))

    def decisions(self) -> list[tuple[str, str, str]]:
        return [
            (d["tool"], d["action"], d["rule"]) for k, d in self.records if k == "policy_decision"
        ]


__all__ = ["GovernancePart", "Kept", "Ledger", "S", "agent_workflow", "make_tools"]
