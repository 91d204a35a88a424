"""Calls governance refused before they reached the journal are in the mind log, with who
refused them and why: a policy's deny, a budget trip (then the same call, run after the budget
was raised), an approval waited for and then rejected."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypedDict

from tether import END, START, Graph, RunContext, Runtime
from tether.core.governor import GovernedCall
from tether.evaluation import mind_log, run_kpis
from tether.governance import ApprovalRule, Approvals, Budget, Governance, GovernancePart
from tether.governance.approvals import generate_key, granted, request_approval, sign
from tether.governance.policy import PolicySet
from tether.governance.policy_rules import Rule
from tether.governance.scope import RunScope
from tether.llm.fakes import ScriptedModel, tool_call
from tether.llm.types import ModelResponse
from tether.store.memory import MemoryStore
from tether.store.sqlite import SqliteStore
from tether.tools import ToolExecutor, tool

from ..cli.conftest import run_cli

runs: dict[str, int] = {"refund": 0, "lookup": 0}


@tool(scope="write", idempotent=True)
def refund(amount: int) -> str:
    """Refund an amount to the customer."""
    runs["refund"] += 1
    return f"refunded {amount}"


@tool(scope="read")
def lookup(order: int) -> dict[str, Any]:
    """Look an order up."""
    runs["lookup"] += 1
    return {"order": order, "status": "delivered"}


tools = ToolExecutor([refund, lookup])


class S(TypedDict, total=False):
    amount: int
    answer: str


def agent_graph(model: ScriptedModel, governance: Governance, name: str) -> Any:
    """Asks the model, runs the tool calls it chose, asks it again with the results."""

    async def agent(state: S, ctx: RunContext) -> dict[str, Any]:
        said = await model.chat(f"refund {state.get('amount', 0)}")
        results = [await tools.call(c.name, c.arguments, ctx=ctx) for c in said.tool_calls]
        after = await model.chat(f"results: {[r.error or r.value for r in results]}")
        return {"answer": after.text}

    g = Graph(S, name=name)
    g.add_node("agent", agent)
    g.add_edge(START, "agent").add_edge("agent", END)
    return g.compile(governance=governance)


async def test_a_policy_denial_with_its_rationale_and_reason(tmp_path: Path) -> None:
    model = ScriptedModel(
        [
            ModelResponse(
                text="The parcel never came; I will refund the 600.",
                tool_calls=(tool_call("refund", {"amount": 600}),),
            ),
            "I could not refund 600: that needs a manager.",
        ]
    )
    deny = Rule("no-big-refunds", "deny", tool="refund", args={"$.amount": {">": 500}},
                reason="refunds over 500 need a manager")  # fmt: skip
    wf = agent_graph(model, Governance(policies=PolicySet([deny])), "refunds")
    before = runs["refund"]
    store = SqliteStore(tmp_path / "runs.db")
    async with Runtime(store) as rt:
        res = await rt.run(wf, {"amount": 600})
        assert res.completed
        log = await mind_log(store, res.run_id)
        kpi = await run_kpis(store, res.run_id)
    assert runs["refund"] == before  # never ran
    assert [(e.kind, e.name, e.status) for e in log.entries] == [
        ("thought", "scripted:scripted", "done"),
        ("action", "refund", "denied"),
        ("thought", "scripted:scripted", "done"),
    ]
    first, action, _ = log.entries
    assert [e.index for e in log.entries] == [0, 1, 2]
    assert action.refused_by == "policy"
    assert action.error is not None and action.error["type"] == "PolicyViolationError"
    assert "no-big-refunds" in action.error["message"]
    assert "need a manager" in action.error["message"]
    assert action.input == {"amount": 600}
    assert (action.rationale_source, action.rationale) == (
        "model", "The parcel never came; I will refund the 600.",
    )  # fmt: skip
    assert action.decided_by == first.key
    assert action.conclusion == "I could not refund 600: that needs a manager."
    assert action.used_later is None and action.output is None
    assert action.as_dict()["refused_by"] == "policy"
    assert kpi.tool_calls == 0  # a refused call is no tool call in the KPIs

    shown = run_cli("mindlog", res.run_id, store=f"sqlite:///{tmp_path / 'runs.db'}")
    assert shown.rc == 0, shown.err
    assert "ACTION refund denied (policy)" in shown.out
    assert "error: PolicyViolationError: denied by policy 'no-big-refunds'" in shown.out


async def test_a_budget_trip_then_the_same_call_once_raised() -> None:
    model = ScriptedModel(
        [
            ModelResponse(
                text="Check both orders.",
                tool_calls=(tool_call("lookup", {"order": 1}), tool_call("lookup", {"order": 2})),
            ),
            "Both were delivered.",
        ]
    )
    wf = agent_graph(model, Governance(budget=Budget(tool_calls=1)), "orders")
    store = MemoryStore()
    async with Runtime(store, workflows=[wf]) as rt:
        res = await rt.run(wf, {})
        assert res.status.value == "ESCALATED" and res.escalation["kind"] == "budget"
        parked = await mind_log(store, res.run_id)
        again = await rt.resume(res.run_id, {"raise_budget": {"tool_calls": 5}})
        done = await rt.wait(again.run_id)
        assert done.completed
        log = await mind_log(store, res.run_id)

    assert [(e.kind, e.status, e.input) for e in parked.entries[1:]] == [
        ("action", "done", {"order": 1}),
        ("action", "stopped", {"order": 2}),
    ]
    assert parked.entries[0].kind == "thought"
    stopped = parked.entries[2]
    assert stopped.refused_by == "budget"
    assert stopped.error is not None and stopped.error["kind"] == "budget"
    assert "tool_calls" in stopped.error["message"]
    assert stopped.rationale == "Check both orders." and stopped.step == 1
    # resumed with a higher budget: the stopped call ran under the same key, after the trip
    assert [(e.kind, e.status) for e in log.entries] == [
        ("thought", "done"),
        ("action", "done"),
        ("action", "stopped"),
        ("action", "done"),
        ("thought", "done"),
    ]
    assert log.entries[2].key == log.entries[3].key == stopped.key
    assert log.entries[3].output == {"order": 2, "status": "delivered"}


class RefundsNeedApproval(GovernancePart):
    async def before_call(self, scope: RunScope, call: GovernedCall) -> None:
        if call.name == "refund" and await granted(scope, call) is None:
            await request_approval(
                scope, call, reason="refunds need a finance approval", rule=ApprovalRule()
            )


async def test_an_approval_waited_for_then_rejected() -> None:
    model = ScriptedModel(
        [
            ModelResponse(text="Refund it.", tool_calls=(tool_call("refund", {"amount": 40}),)),
            "The refund was turned down.",
        ],
        cycle=True,
    )
    wf = agent_graph(model, Governance(parts=[RefundsNeedApproval()]), "approved")
    before = runs["refund"]
    store = MemoryStore()
    async with Runtime(store, workflows=[wf]) as rt:
        approvals = Approvals(rt)
        alice = generate_key()
        await approvals.register_approver("alice", "finance", alice)
        parked = await rt.run(wf, {"amount": 40})
        assert parked.status.value == "ESCALATED"
        approval_id = parked.escalation["details"]["approval_id"]
        waiting = await mind_log(store, parked.run_id)
        request = await approvals.get(approval_id)
        await approvals.reject(
            approval_id, "alice", sign(alice, request, "reject"), reason="wrong order"
        )
        done = await rt.wait(parked.run_id)
        assert done.completed and done.state["answer"] == "The refund was turned down."
        log = await mind_log(store, parked.run_id)
    assert runs["refund"] == before

    (held,) = [e for e in waiting.entries if e.kind == "action"]
    assert (held.status, held.refused_by) == ("stopped", "approval")
    assert held.error is not None and "finance approval" in held.error["message"]
    actions = [e for e in log.entries if e.kind == "action"]
    assert [(e.status, e.refused_by) for e in actions] == [
        ("stopped", "approval"),
        ("denied", "approval"),
    ]
    rejected = actions[1]
    assert rejected.key == held.key
    assert rejected.error is not None and "wrong order" in rejected.error["message"]
    assert rejected.conclusion == "The refund was turned down."


async def test_a_model_call_over_budget_is_a_stopped_thought() -> None:
    model = ScriptedModel(["First thought.", "Second thought."])

    async def think(state: S, ctx: RunContext) -> dict[str, Any]:
        first = await model.chat("one")
        second = await model.chat("two")
        return {"answer": first.text + second.text}

    g = Graph(S, name="thinker")
    g.add_node("think", think)
    g.add_edge(START, "think").add_edge("think", END)
    wf = g.compile(governance=Governance(budget=Budget(model_calls=1)))
    store = MemoryStore()
    async with Runtime(store) as rt:
        res = await rt.run(wf, {})
        assert res.status.value == "ESCALATED"
        log = await mind_log(store, res.run_id)
    assert [(e.kind, e.status, e.refused_by) for e in log.entries] == [
        ("thought", "done", None),
        ("thought", "stopped", "budget"),
    ]
    stopped = log.entries[1]
    assert stopped.output is None and stopped.input["messages"] == 1
    assert stopped.error is not None and "model_calls" in stopped.error["message"]
    assert stopped.key.endswith(":model:1")  # the second model call's journal key
