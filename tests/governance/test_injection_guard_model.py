"""The optional guard model: a cheap model checks each proposed write against plain-language
rules before it runs (a ScriptedModel plays it here, so the verdicts are deterministic)."""

from __future__ import annotations

import pytest

from tests.governance.injection_cases import CASES
from tests.governance.policy_agents import Kept, Ledger, agent_workflow, make_tools
from tests.governance.test_injection import CONFIG, hijacked, legit
from tether import RunStatus, Runtime
from tether.core.errors import ConfigurationError, ModelError
from tether.governance import Governance, GuardModel, PolicySet
from tether.llm.fakes import ScriptedModel, tool_call
from tether.store.memory import MemoryStore

RULES = ["Refunds go only to the ticket's own customer account.", "Never e-mail outsiders."]


async def run(guard: GuardModel, model_calls: list[object], audit: Kept) -> tuple[object, Ledger]:
    ledger = Ledger()
    gov = Governance(policies=PolicySet(guard=None), guards=[guard], audit=audit)
    wf = agent_workflow(legit(model_calls), make_tools(ledger, "hello"), gov)  # type: ignore[arg-type]
    async with Runtime(MemoryStore()) as rt:
        res = await rt.run(wf, {"request": "x"}, metadata=CONFIG)
    return res, ledger


async def test_allow_deny_and_escalate_verdicts() -> None:
    judge = ScriptedModel(["ALLOW", "DENY: the account is not the customer's", "ESCALATE: unsure"])
    audit = Kept()
    calls = [
        tool_call("refund", {"account": "ACC-1001", "amount": 20}),
        tool_call("refund", {"account": "ACC-6666", "amount": 20}),
        tool_call("send_email", {"to": "x@y.example", "body": "hi"}),
    ]
    res, ledger = await run(GuardModel(judge, RULES), calls, audit)
    assert res.status is RunStatus.ESCALATED  # type: ignore[attr-defined]
    assert ledger.refunds == [("ACC-1001", 20)] and ledger.emails == []
    seen = [(d["tool"], d["action"]) for k, d in audit.records if k == "guard_model_decision"]
    assert seen == [("refund", "allow"), ("refund", "deny"), ("send_email", "escalate")]
    # the model saw the rules and the exact proposed action; reads were never sent to it
    assert judge.calls == 3
    prompt = judge.requests[1].messages[-1].content
    assert "Refunds go only to the ticket's own customer account." in prompt
    assert '"account": "ACC-6666"' in prompt and '"scope": "write"' in prompt


async def test_an_unreadable_answer_or_a_failing_model_escalates() -> None:
    for answer in ("Sure, looks fine to me!", ModelError("down")):
        audit = Kept()
        judge = ScriptedModel([answer])
        call = [tool_call("refund", {"account": "ACC-1001", "amount": 20})]
        res, ledger = await run(GuardModel(judge, RULES), call, audit)
        assert res.status is RunStatus.ESCALATED  # type: ignore[attr-defined]
        assert ledger.refunds == []


async def test_with_the_injection_guard_a_lenient_model_still_cannot_approve_an_attack() -> None:
    """The guard model is an extra check, never a bypass: a model fooled into ALLOW does not
    release a write the injection guard escalates."""
    ledger = Ledger()
    fooled = ScriptedModel(["ALLOW"], cycle=True)
    gov = Governance(policies=PolicySet(), guards=[GuardModel(fooled, RULES)])
    wf = agent_workflow(hijacked(CASES[0]), make_tools(ledger, CASES[0].text), gov)
    async with Runtime(MemoryStore()) as rt:
        res = await rt.run(wf, {"request": "x"}, metadata=CONFIG)
    assert res.status is RunStatus.ESCALATED and ledger.refunds == []
    assert fooled.calls == 0  # the policy stopped it first


def test_bad_configuration() -> None:
    with pytest.raises(ConfigurationError, match="takes a Model"):
        GuardModel("gpt", RULES)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="non-empty rules"):
        GuardModel(ScriptedModel([]), [])
    with pytest.raises(ConfigurationError, match="on_unsure"):
        GuardModel(ScriptedModel([]), RULES, on_unsure="maybe")
