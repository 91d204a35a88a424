"""Governance board: proposer, devil's advocate and compliance in parallel, chair decides with
a recorded rationale; compliance violations force no-go whatever the chair says."""

from __future__ import annotations

from tether import Runtime, Workflow
from tether.agents import BoardOptions, governance_board
from tether.llm import ScriptedModel
from tether.store.memory import MemoryStore


def no_double_refunds(proposal: str) -> list[str]:
    return ["a second refund of one charge is not allowed"] if "twice" in proposal else []


def board(proposal: str, ruling: dict[str, str], name: str) -> tuple[Workflow, ScriptedModel]:
    chair = ScriptedModel([ruling], name="chair")
    wf = governance_board(
        BoardOptions(
            proposer=ScriptedModel([proposal], name="proposer"),
            advocate=ScriptedModel(["it may be fraud"], name="advocate"),
            chair=chair,
            compliance=no_double_refunds,
        ),
        name=name,
    )
    return wf, chair


async def test_the_chair_decides_go_with_a_recorded_rationale() -> None:
    wf, chair = board(
        "refund order #1234 once", {"decision": "go", "rationale": "one duplicate charge"}, "b_go"
    )
    async with Runtime(MemoryStore(), recover=False) as rt:
        res = await rt.run(wf, {"question": "Customer charged twice for #1234?"})
        events = [e async for e in rt.events(res.run_id, follow=False)]
    assert res.state["decision"] == "go" and res.state["rationale"] == "one duplicate charge"
    assert res.state["objections"] == "it may be fraud" and res.state["violations"] == []
    seen = chair.requests[0].messages[-1].content
    assert "it may be fraud" in seen and "Compliance violations:\nnone" in seen
    rationale = [e for e in events if e.type == "rationale"]
    assert rationale and rationale[0].data["text"] == "one duplicate charge"
    assert rationale[0].data["decision"] == "go"
    assert res.state["model_calls"] == 3


async def test_a_compliance_violation_overrules_a_go() -> None:
    wf, _ = board("refund it twice", {"decision": "go", "rationale": "keep them happy"}, "b_no")
    final = await wf.ainvoke({"question": "?"})
    assert final["decision"] == "no_go" and final["chair_said"] == "go"
    assert "compliance failed" in final["rationale"] and "keep them happy" in final["rationale"]
    assert final["violations"] == ["a second refund of one charge is not allowed"]
