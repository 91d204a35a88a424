"""The policy engine in governed runs: allow, deny (the planner gets the typed error and the run
goes on), escalate (an approval request, the run ESCALATED), defaults, confidence, tenants."""

from __future__ import annotations

from typing import Any

from tests.governance.policy_agents import Kept, Ledger, S, agent_workflow, make_tools
from tether import END, START, Graph, RunContext, RunStatus, Runtime
from tether.governance import Approvals, Governance, PolicySet, Rule, model_confidence
from tether.llm.fakes import ScriptedModel, tool_call
from tether.store.memory import MemoryStore

NO_BIG_REFUNDS = Rule(
    "no-big-refunds",
    "deny",
    tool="refund",
    args={"$.amount": {">": 500}},
    reason="refunds over 500 are not allowed; offer a voucher instead",
)


async def test_deny_is_fed_back_to_the_planner_and_the_run_goes_on() -> None:
    ledger, audit = Ledger(), Kept()
    model = ScriptedModel(
        [
            tool_call("refund", {"account": "ACC-1", "amount": 900}),
            tool_call("refund", {"account": "ACC-1", "amount": 50}),
            "refunded 50 instead",
        ]
    )
    gov = Governance(policies=PolicySet([NO_BIG_REFUNDS]), audit=audit)
    wf = agent_workflow(model, make_tools(ledger), gov)
    async with Runtime(MemoryStore()) as rt:
        res = await rt.run(wf, {"request": "refund me"})
        events = [e async for e in rt.events(res.run_id, follow=False)]
    assert res.status is RunStatus.COMPLETED
    assert res.state["log"] == [
        {"tool": "refund", "ok": False, "error": "PolicyViolationError"},
        {"tool": "refund", "ok": True, "error": None},
        {"final": "refunded 50 instead"},
    ]
    assert ledger.refunds == [("ACC-1", 50)]
    # the planner saw the typed error and the rule's reason in its next prompt
    told = model.requests[1].messages[-1]
    assert told.role == "tool"
    assert "PolicyViolationError" in told.content and "offer a voucher" in told.content
    assert audit.decisions() == [
        ("refund", "deny", "no-big-refunds"),
        ("refund", "allow", "default:write"),
    ]
    seen = [e.data for e in events if e.type == "policy_decision"]
    assert [(d["action"], d["rule"]) for d in seen] == [
        ("deny", "no-big-refunds"),
        ("allow", "default:write"),
    ]
    assert "args" not in seen[0]  # arguments go to the audit log, not the event stream


async def test_a_denied_call_is_not_retried() -> None:
    ledger = Ledger()
    calls = {"n": 0}
    tools = make_tools(ledger)
    contract = tools.registry.get("refund")
    inner = contract.fn

    def counting(**kw: Any) -> Any:
        calls["n"] += 1
        return inner(**kw)

    object.__setattr__(contract, "fn", counting)
    model = ScriptedModel([tool_call("refund", {"account": "A-1", "amount": 501}), "ok"])
    wf = agent_workflow(model, tools, Governance(policies=PolicySet([NO_BIG_REFUNDS])))
    async with Runtime(MemoryStore()) as rt:
        res = await rt.run(wf, {"request": "refund"})
    assert res.status is RunStatus.COMPLETED
    assert calls["n"] == 0 and ledger.refunds == []
    assert res.state["log"][0]["error"] == "PolicyViolationError"


async def test_escalate_parks_the_run_with_an_approval_request() -> None:
    ledger, audit = Ledger(), Kept()
    model = ScriptedModel([tool_call("delete_account", {"account": "ACC-7"}), "done"])
    wf = agent_workflow(model, make_tools(ledger), Governance(policies=PolicySet(), audit=audit))
    async with Runtime(MemoryStore()) as rt:
        res = await rt.run(wf, {"request": "close my account"})
        pending = await Approvals(rt).list(run_id=res.run_id)
    assert res.status is RunStatus.ESCALATED
    assert ledger.deleted == []
    esc = res.escalation
    assert esc is not None and esc["kind"] == "approval"
    intent = esc["details"]["intent"]
    assert (intent["tool"], intent["args"]) == ("delete_account", {"account": "ACC-7"})
    assert [a.approval_id for a in pending] == [esc["details"]["approval_id"]]
    assert pending[0].rule["extra"]["policy_rule"] == "default:destructive"
    assert audit.decisions() == [("delete_account", "escalate", "default:destructive")]


async def test_priority_then_declaration_order() -> None:
    rules = [
        Rule("first-declared", "allow", tool="refund"),
        Rule("second-declared", "deny", tool="refund"),
        Rule("urgent", "escalate", tool="refund", args={"$.amount": {">=": 100}}, priority=10),
    ]
    ledger, audit = Ledger(), Kept()
    model = ScriptedModel(
        [
            tool_call("refund", {"account": "A-1", "amount": 20}),
            tool_call("refund", {"account": "A-1", "amount": 100}),
            "x",
        ]
    )
    wf = agent_workflow(
        model, make_tools(ledger), Governance(policies=PolicySet(rules), audit=audit)
    )
    async with Runtime(MemoryStore()) as rt:
        res = await rt.run(wf, {"request": "r"})
    assert res.status is RunStatus.ESCALATED
    assert audit.decisions() == [
        ("refund", "allow", "first-declared"),
        ("refund", "escalate", "urgent"),
    ]
    assert ledger.refunds == [("A-1", 20)]


async def test_confidence_from_the_call_or_the_run_metadata() -> None:
    rule = Rule("unsure", "deny", scope="write", confidence={"<": 0.7}, reason="too unsure")
    ledger = Ledger()
    tools = make_tools(ledger)

    async def node(state: S, ctx: RunContext) -> dict[str, Any]:
        out = []
        with model_confidence(0.4):
            out.append(await tools.call("refund", {"account": "A", "amount": 11}, ctx=ctx))
        with model_confidence(0.9):
            out.append(await tools.call("refund", {"account": "B", "amount": 12}, ctx=ctx))
        out.append(await tools.call("refund", {"account": "C", "amount": 13}, ctx=ctx))
        return {"log": [{"ok": r.ok} for r in out]}

    g = Graph(S, name="conf")
    g.add_node("n", node)
    g.add_edge(START, "n").add_edge("n", END)
    wf = g.compile(governance=Governance(policies=PolicySet([rule])))
    async with Runtime(MemoryStore()) as rt:
        plain = await rt.run(wf, {})
        meta = await rt.run(wf, {}, metadata={"confidence": 0.2})
    # no confidence given: the rule does not apply; the metadata's applies to every call
    assert [r["ok"] for r in plain.state["log"]] == [False, True, True]
    assert [r["ok"] for r in meta.state["log"]] == [False, True, False]
    assert [a for a, _ in ledger.refunds] == ["B", "C", "B"]


async def test_tenant_and_run_metadata() -> None:
    rules = [
        Rule("trial-tenants", "deny", scope="write", tenant="trial-*"),
        Rule("frozen", "deny", metadata={"$.account.frozen": True}),
    ]
    ledger = Ledger()
    tools = make_tools(ledger)
    model = ScriptedModel([tool_call("refund", {"account": "A-1", "amount": 10}), "x"], cycle=True)
    wf = agent_workflow(model, tools, Governance(policies=PolicySet(rules)))
    async with Runtime(MemoryStore()) as rt:
        trial = await rt.run(wf, {"request": "r"}, tenant="trial-42")
        frozen = await rt.run(wf, {"request": "r"}, metadata={"account": {"frozen": True}})
        paid = await rt.run(wf, {"request": "r"}, tenant="acme")
    assert trial.state["log"][0]["error"] == "PolicyViolationError"
    assert frozen.state["log"][0]["error"] == "PolicyViolationError"
    assert paid.state["log"][0]["ok"] is True
    assert ledger.refunds == [("A-1", 10)]
