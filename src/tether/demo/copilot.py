"""The support copilot: a governed, durable graph that handles a refund ticket.

    route -> recall_policy -> lookup_order -> propose -> refund <-> check_payment -> reply

The graph, not the model, holds the safety properties: the order id comes from the ticket by
pattern, the refund is computed from the order's charges, the refund tool is approval-gated
above a threshold, the stuttering check bounds identical refund calls, and the payment provider
deduplicates by an idempotency key derived from the order and charge. The model writes the
agent's thoughts and the customer's reply; a poor answer changes the words, never the money.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, TypedDict

from tether import END, START, Graph, RunContext, append
from tether.governance import Budget, Governance, StutterGuard
from tether.graph.builder import Workflow

from .approval_rule import RefundApproval
from .shop import APPROVAL_THRESHOLD_CENTS, dollars, duplicate_charges

WORKFLOW = "support_copilot"
TENANT = "acme-shop"
REFUND_TOOL = "refund_payment"
_ORDER_ID = re.compile(r"#\s*(\d{3,9})\b|\border\s+(?:no\.?\s*|number\s*)?(\d{3,9})\b", re.I)

INTENTS = {
    "refund": [
        "I was charged twice, please refund me",
        "refund my duplicate payment",
        "I want my money back for this order",
        "you billed my card two times",
    ],
    "order_status": [
        "where is my order",
        "has my package shipped yet",
        "tracking number for my order",
    ],
}


class Ticket(TypedDict, total=False):
    message: str
    intent: str
    route_score: float
    order_id: int
    policy: str
    order: dict[str, Any]
    proposal: dict[str, Any]
    reference: str
    attempts: int
    payment_state: str
    problem: str
    thoughts: Annotated[list[str], append]
    reply: str


def order_id_of(message: str) -> int | None:
    m = _ORDER_ID.search(message)
    return int(m.group(1) or m.group(2)) if m else None


async def route(state: Ticket, ctx: RunContext) -> dict[str, Any]:
    match = await ctx.deps["router"].route(state["message"])
    oid = order_id_of(state["message"])
    update: dict[str, Any] = {"intent": match.route or "other", "route_score": match.score}
    if oid is not None:
        update["order_id"] = oid
    return update


async def recall_policy(state: Ticket, ctx: RunContext) -> dict[str, Any]:
    res = await ctx.deps["tools"].call(
        "recall", {"query": "refund policy for a duplicate charge", "k": 1}, ctx=ctx
    )
    hits = res.unwrap()
    return {"policy": hits[0]["text"] if hits else "no policy found: escalate to a human"}


async def lookup_order(state: Ticket, ctx: RunContext) -> dict[str, Any]:
    if "order_id" not in state:
        return {"problem": "the ticket names no order number"}
    res = await ctx.deps["tools"].call("lookup_order", {"order_id": state["order_id"]}, ctx=ctx)
    order = res.unwrap() if res.error is None else {"error": str(res.error)}
    if "error" in order:
        return {"problem": f"order #{state['order_id']} was not found"}
    return {"order": order}


async def propose(state: Ticket, ctx: RunContext) -> dict[str, Any]:
    order = state["order"]
    extra = duplicate_charges(order)
    if not extra:
        return {"problem": f"order #{order['order_id']} has no duplicate charge"}
    charge = extra[-1]
    proposal = {
        "order_id": order["order_id"],
        "charge_id": charge["charge_id"],
        "amount_cents": charge["amount_cents"],
    }
    thought = (
        f"Order #{order['order_id']} was charged {dollars(charge['amount_cents'])} twice; "
        f"policy says refund the later charge {charge['charge_id']}."
    )
    return {"proposal": proposal, "thoughts": [thought]}


async def refund(state: Ticket, ctx: RunContext) -> dict[str, Any]:
    res = await ctx.deps["tools"].call(REFUND_TOOL, state["proposal"], ctx=ctx)
    if res.error is not None:
        return {"problem": f"the refund was refused: {res.error}"}
    answer = res.unwrap()
    return {"reference": answer["reference"], "attempts": state.get("attempts", 0) + 1}


async def check_payment(state: Ticket, ctx: RunContext) -> dict[str, Any]:
    res = await ctx.deps["tools"].call("payment_status", {"reference": state["reference"]}, ctx=ctx)
    status = res.unwrap()
    said = await ctx.deps["model"].chat(
        [
            {
                "role": "system",
                "content": "You are a support agent. In one short sentence, say what you do next.",
            },
            {
                "role": "user",
                "content": f"The payment API answered {status} for refund {state['reference']}.",
            },
        ],
        max_tokens=40,
        temperature=0.0,
    )
    return {"payment_state": status["state"], "thoughts": [_one_line(said.text)]}


def after_check(state: Ticket) -> str:
    # The known failure mode, on purpose: anything but "settled" reads as "not refunded yet".
    return "reply" if state.get("payment_state") == "settled" else "refund"


async def reply(state: Ticket, ctx: RunContext) -> dict[str, Any]:
    facts = _facts(state)
    said = await ctx.deps["model"].chat(
        [
            {"role": "system", "content": "Write one friendly sentence to the customer."},
            {"role": "user", "content": f"Customer wrote: {state['message']}\nFacts: {facts}"},
        ],
        max_tokens=60,
        temperature=0.0,
    )
    opener = _one_line(said.text)
    if not opener or len(opener) > 240:
        opener = "Thank you for reaching out."
    return {"reply": f"{opener} {facts}"}


def _facts(state: Ticket) -> str:
    if state.get("problem"):
        return (
            f"We could not complete this automatically ({state['problem']}); "
            "a colleague will follow up."
        )
    if state.get("payment_state") == "settled":
        p = state["proposal"]
        return (
            f"We refunded the duplicate charge of {dollars(p['amount_cents'])} on order "
            f"#{p['order_id']} (reference {state['reference']})."
        )
    if state.get("intent") != "refund":
        return "A colleague from the right team will answer you shortly."
    return "Your refund is being processed."


def _one_line(text: str) -> str:
    return " ".join((text or "").split())[:400]


def after_route(state: Ticket) -> str:
    return "recall_policy" if state.get("intent") == "refund" else "reply"


def next_or_reply(target: str) -> Any:
    def pick(state: Ticket) -> str:
        return "reply" if state.get("problem") else target

    return pick


def build_workflow() -> Workflow:
    g = Graph(Ticket, name=WORKFLOW)
    g.add_node("route", route, phase="planner")
    g.add_node("recall_policy", recall_policy, phase="planner")
    g.add_node("lookup_order", lookup_order, phase="planner")
    g.add_node("propose", propose, phase="planner")
    g.add_node("refund", refund, phase="tool")
    g.add_node("check_payment", check_payment, phase="agent")
    g.add_node("reply", reply, phase="validator")
    g.add_edge(START, "route")
    g.add_conditional_edges("route", after_route, ["recall_policy", "reply"])
    g.add_edge("recall_policy", "lookup_order")
    g.add_conditional_edges("lookup_order", next_or_reply("propose"), ["propose", "reply"])
    g.add_conditional_edges("propose", next_or_reply("refund"), ["refund", "reply"])
    g.add_conditional_edges("refund", next_or_reply("check_payment"), ["check_payment", "reply"])
    g.add_conditional_edges("check_payment", after_check, ["refund", "reply"])
    g.add_edge("reply", END)
    governance = Governance(
        guards=[StutterGuard(max_repeats=3)],
        budget=Budget(model_calls=20, tool_calls=30, steps=60),
        parts=[RefundApproval(REFUND_TOOL, APPROVAL_THRESHOLD_CENTS)],
    )
    return g.compile(governance=governance)
