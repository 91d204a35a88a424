"""ReWOO under the injection guard: the planner saw only the task, so its plan is committed
before any tool runs; the planned payment takes the IBAN the bill gives (``#E1``) without an
approval, where value provenance alone escalates it."""

from __future__ import annotations

from typing import Any

from tether import RunStatus, Runtime
from tether.agents import RewooOptions, rewoo_agent
from tether.agents.rewoo_plan import Plan, planned_calls
from tether.governance import OPEN, Governance, InjectionGuard, PlannedCall, PolicySet
from tether.llm import ScriptedModel
from tether.store.memory import MemoryStore
from tether.tools import ToolExecutor, tool

IBAN = "DE89370400440532013000"
PLAN = {
    "steps": [
        {"id": "#E1", "tool": "payee_of", "args": {"bill": "december.txt"}},
        {"id": "#E2", "tool": "pay", "args": {"iban": "#E1", "amount": 98.7}},
        {"id": "#E3", "tool": "note", "args": {"text": "paid #E2 to the payee"}},
    ]
}


def agent(paid: list[tuple[str, float]], commit: bool) -> Any:
    @tool(scope="read")
    def payee_of(bill: str) -> str:
        """The IBAN a bill asks to be paid to (the bill is written by anyone)."""
        return IBAN

    @tool(scope="write", idempotent=True)
    def pay(iban: str, amount: float) -> str:
        """Pay an IBAN."""
        paid.append((iban, amount))
        return "ok"

    @tool(scope="read")
    def note(text: str) -> str:
        """Write a note for the user."""
        return text

    gov = Governance(policies=PolicySet(guard=InjectionGuard(trust_input=True)))
    options = RewooOptions(
        planner=ScriptedModel([PLAN]),
        solver=ScriptedModel(["Paid."]),
        tools=ToolExecutor([payee_of, pay, note]),
        governance=gov,
        commit_plan=commit,
    )
    return rewoo_agent(options, name=f"pay-{commit}")


async def test_a_committed_rewoo_plan_lets_its_planned_write_use_the_evidence() -> None:
    out = []
    for commit in (False, True):
        paid: list[tuple[str, float]] = []
        async with Runtime(MemoryStore()) as rt:
            res = await rt.run(agent(paid, commit), {"task": "Pay my December bill: 98.70."})
        out.append((res.status, paid))
    assert out == [
        (RunStatus.ESCALATED, []),  # value provenance: the IBAN came from a tool's output
        (RunStatus.COMPLETED, [(IBAN, 98.7)]),
    ]


def test_the_plan_as_the_guard_reads_it() -> None:
    assert planned_calls(Plan.model_validate(PLAN)) == [
        PlannedCall("payee_of", {"bill": "december.txt"}),
        PlannedCall("pay", {"iban": OPEN.from_step(0), "amount": 98.7}),
        PlannedCall("note", {"text": OPEN}),
    ]
