"""The guards meant for the run's own model calls skip the calls nested in them (a judge a
model consults, a guard model's check, a ``journal=False`` call: ``scratch["nested"]``), while
PII redaction still applies to every call. Before, SemanticLoopGuard checked each nested call
too: it read the journal and embedded again, and put its re-plan warning into the judge's
prompt (warned and audited twice for one loop)."""

from __future__ import annotations

from typing import Any, TypedDict

from tests.governance.test_guards_semantic import NEW, SAME, Audit, TopicEmbedder, warned
from tether import END, START, Graph, RunContext, RunStatus, Runtime
from tether.governance import Governance, PiiDetector, PiiGuard, PiiKey, SemanticLoopGuard
from tether.llm import FunctionModel, ModelRequest, ModelResponse
from tether.store.memory import MemoryStore


class Plans(TypedDict, total=False):
    plans: list[str]


def looping_agent(judge: FunctionModel) -> FunctionModel:
    """An agent model that asks ``judge`` inside each of its calls, repeating itself until it
    is warned."""

    async def agent(request: ModelRequest) -> ModelResponse:
        await judge.chat("Is this plan sound?", max_tokens=4)
        return ModelResponse(text=NEW if warned(request) else SAME)

    return FunctionModel(agent, name="agent")


def workflow(model: FunctionModel, judge: FunctionModel, governance: Governance) -> Any:
    async def think(state: Plans, ctx: RunContext) -> dict[str, Any]:
        said = await model.chat("What is the next step for ticket 7?", max_tokens=32)
        await judge.chat("Anything to add?", max_tokens=4, journal=False)
        return {"plans": [*state.get("plans", []), said.text]}

    def route(state: Plans) -> str:
        return END if state["plans"][-1].startswith("New plan") else "think"

    g = Graph(Plans, name="nested_thinker")
    g.add_node("think", think).add_edge(START, "think")
    g.add_conditional_edges("think", route, ["think", END])
    return g.compile(governance=governance)


async def test_the_semantic_guard_leaves_nested_and_unjournaled_calls_alone() -> None:
    judged: list[ModelRequest] = []
    judge = FunctionModel(lambda r: judged.append(r) or "yes", name="judge")
    audit = Audit()
    embedder = TopicEmbedder()
    guard = SemanticLoopGuard(window=5, embedder=embedder)
    wf = workflow(looping_agent(judge), judge, Governance(guards=[guard], audit=audit))
    async with Runtime(MemoryStore(), workflows=[wf], recover=False) as rt:
        res = await rt.run(wf, {})
        events = [e.type for e in await rt.store.list_events(res.run_id)]
    assert res.status is RunStatus.COMPLETED, res.error
    assert res.state["plans"] == [SAME] * 5 + [NEW]  # the agent's own call was warned
    assert len(judged) == 12 and not any(warned(r) for r in judged)  # no judge was
    assert [k for k, _ in audit.records].count("loop_guard.warning") == 1  # before: 3
    assert events.count("loop_warning") == 1


async def test_pii_redaction_still_applies_to_nested_calls() -> None:
    judged: list[ModelRequest] = []
    judge = FunctionModel(lambda r: judged.append(r) or "yes", name="judge")

    async def agent(request: ModelRequest) -> ModelResponse:
        await judge.chat("Should we email ada@example.com about order 7?", max_tokens=4)
        return ModelResponse(text="New plan: email the customer.")

    model = FunctionModel(agent, name="agent")
    guard = PiiGuard(key=PiiKey.generate(), detector=PiiDetector(ner=False))
    wf = workflow(model, judge, Governance(guards=[guard]))
    async with Runtime(MemoryStore(), workflows=[wf], recover=False) as rt:
        res = await rt.run(wf, {})
    assert res.status is RunStatus.COMPLETED, res.error
    said = [m.content for r in judged for m in r.messages]
    assert len(judged) == 2 and not any("ada@example.com" in s for s in said)
    assert any("<EMAIL_ADDRESS_1>" in s for s in said)
