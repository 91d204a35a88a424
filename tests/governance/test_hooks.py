"""The governance hooks: a part sees every live model and tool call of a governed run, before
(it may deny or trip) and after (with what the call cost); replays are not seen."""

from __future__ import annotations

from typing import Any, TypedDict

import pytest

from tether import END, START, Graph, RunContext, RunStatus, Runtime
from tether.core.errors import EscalationSignal, GraphDefinitionError, PolicyViolationError
from tether.core.governor import CallOutcome, GovernedCall
from tether.governance import Governance, GovernancePart, RunScope
from tether.llm.fakes import ScriptedModel
from tether.store.memory import MemoryStore
from tether.tools import ToolExecutor, tool


class S(TypedDict, total=False):
    out: list[str]


class Recorder(GovernancePart):
    def __init__(self, deny: str = "", trip_after: int = 0) -> None:
        self.seen: list[tuple[str, str, dict[str, Any]]] = []
        self.deny, self.trip_after = deny, trip_after

    async def before_call(self, scope: RunScope, call: GovernedCall) -> None:
        self.seen.append(("before", call.name, dict(call.projected)))
        if call.name == self.deny:
            raise PolicyViolationError(f"{call.name} is not allowed here", tool=call.name)
        if self.trip_after and sum(s[0] == "before" for s in self.seen) > self.trip_after:
            raise EscalationSignal("too many calls", kind="test_guard", calls=self.trip_after)

    async def after_call(self, scope: RunScope, call: GovernedCall, outcome: CallOutcome) -> None:
        self.seen.append(("after", call.name, dict(outcome.usage)))


sent: list[int] = []


@tool(scope="write", idempotent=True)
def refund(order: int) -> str:
    """Refund an order."""
    sent.append(order)
    return f"refunded {order}"


@tool(scope="destructive")
def wipe(order: int) -> str:
    """Delete an order."""
    return "wiped"


def build(part: Recorder, model: ScriptedModel, tools: ToolExecutor) -> Any:
    async def agent(state: S, ctx: RunContext) -> dict[str, Any]:
        said = await model.chat("refund order 1", max_tokens=50)
        ok = await tools.call("refund", {"order": 1}, ctx=ctx)
        no = await tools.call("wipe", {"order": 1}, ctx=ctx)
        ok2 = await tools.call("refund", {"order": 2}, ctx=ctx)
        return {"out": [said.text, str(ok.value), type(no.error).__name__, str(ok2.value)]}

    g = Graph(S, name="governed")
    g.add_node("agent", agent)
    g.add_edge(START, "agent").add_edge("agent", END)
    return g.compile(governance=Governance(parts=[part]))


async def test_a_part_sees_each_live_call_and_may_deny_one() -> None:
    sent.clear()
    part = Recorder(deny="wipe")
    tools = ToolExecutor([refund, wipe])
    wf = build(part, ScriptedModel(["sure"]), tools)
    async with Runtime(MemoryStore()) as rt:
        res = await rt.run(wf, {})
    assert res.status is RunStatus.COMPLETED
    assert res.state["out"] == ["sure", "refunded 1", "PolicyViolationError", "refunded 2"]
    names = [(when, name) for when, name, _ in part.seen]
    assert names == [
        ("before", "scripted:scripted"),
        ("after", "scripted:scripted"),
        ("before", "refund"),
        ("after", "refund"),
        ("before", "wipe"),  # denied: never called, nothing after
        ("before", "refund"),
        ("after", "refund"),
    ]
    assert part.seen[0][2]["output_tokens"] == 50  # projected from max_tokens
    assert part.seen[1][2]["output_tokens"] > 0  # what the call used
    assert sent == [1, 2]


async def test_a_trip_parks_the_run_and_a_resume_replays_without_asking_again() -> None:
    sent.clear()
    part = Recorder(trip_after=2)  # the model call and the first refund pass
    tools = ToolExecutor([refund, wipe])
    wf = build(part, ScriptedModel(["sure"]), tools)
    async with Runtime(MemoryStore()) as rt:
        res = await rt.run(wf, {})
        assert res.status is RunStatus.ESCALATED
        assert res.escalation is not None and res.escalation["kind"] == "test_guard"
        part.trip_after = 0
        part.seen.clear()
        again = await rt.resume(res.run_id)
        done = await rt.wait(again.run_id)
    assert done.status is RunStatus.COMPLETED
    # the model call and refund 1 were replayed from the journal: not asked, not charged
    assert [(w, n) for w, n, _ in part.seen] == [
        ("before", "wipe"),
        ("after", "wipe"),
        ("before", "refund"),
        ("after", "refund"),
    ]
    assert sent == [1, 2]


def test_compile_refuses_something_else() -> None:
    g = Graph(S, name="x")
    g.add_node("a", lambda s: {})
    g.add_edge(START, "a").add_edge("a", END)
    with pytest.raises(GraphDefinitionError, match="governance must be"):
        g.compile(governance=object())  # type: ignore[arg-type]
