"""Semantic loop detection: when the run's last 5 thoughts (its model responses, from the
journal) are near-duplicates, the guard first warns in the next prompt (a system note, a higher
temperature: re-plan), then trips if the loop persists on the next check. A fake embedder keeps
the unit tests deterministic; one test uses the real MiniLM."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any, TypedDict

import pytest

from tether import END, START, Graph, RunContext, RunStatus, Runtime
from tether.core.errors import ConfigurationError, InvalidInputError
from tether.governance import Governance, RunScope, SemanticLoopGuard
from tether.governance.guards.thoughts import mean_pairwise_cosine, thought_of
from tether.governance.scope import AuditSink
from tether.graph.results import RunResult
from tether.llm import FunctionModel, ModelRequest
from tether.store.memory import MemoryStore

SAME = "The refund for order 7 failed. I will call refund_order for order 7 again."
NEW = "New plan: the refund was accepted, pending settlement; tell the customer and stop."


class TopicEmbedder:
    """Deterministic fake: one axis per distinct text, so equal texts have cosine 1 and
    different texts cosine 0."""

    name = "topics"
    dimensions = 64

    def __init__(self) -> None:
        self.calls = 0

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        self.calls += 1
        rows = []
        for t in texts:
            axis = int(hashlib.sha256(t.encode()).hexdigest(), 16) % self.dimensions
            rows.append([1.0 if i == axis else 0.0 for i in range(self.dimensions)])
        return rows


class Audit(AuditSink):
    def __init__(self) -> None:
        self.records: list[tuple[str, dict[str, Any]]] = []

    async def record(self, scope: RunScope, kind: str, data: dict[str, Any]) -> None:
        self.records.append((kind, data))


class Plans(TypedDict, total=False):
    plans: list[str]


def warned(request: ModelRequest) -> bool:
    return any(m.role == "system" and "Loop warning" in str(m.content) for m in request.messages)


def build(model: FunctionModel, guard: SemanticLoopGuard, audit: AuditSink) -> Any:
    async def think(state: Plans, ctx: RunContext) -> dict[str, Any]:
        said = await model.chat("What is the next step for ticket 7?", max_tokens=32)
        return {"plans": [*state.get("plans", []), said.text]}

    def route(state: Plans) -> str:
        return END if state["plans"][-1].startswith("New plan") else "think"

    g = Graph(Plans, name="thinker")
    g.add_node("think", think)
    g.add_edge(START, "think")
    g.add_conditional_edges("think", route, ["think", END])
    return g.compile(governance=Governance(guards=[guard], audit=audit))


async def test_a_loop_is_warned_then_tripped_when_it_persists() -> None:
    model = FunctionModel(lambda r: SAME, name="stuck")
    audit = Audit()
    wf = build(model, SemanticLoopGuard(window=5, embedder=TopicEmbedder()), audit)
    async with Runtime(MemoryStore()) as rt:
        res = await rt.run(wf, {})
        assert res.status is RunStatus.ESCALATED
        esc = res.escalation
        assert esc is not None and esc["kind"] == "loop_guard"
        d = esc["details"]
        assert d["guard"] == "semantic" and d["window"] == 5 and d["seen"] == 6
        assert d["score"] == pytest.approx(1.0) and d["thoughts"] == [SAME] * 5
        assert "semantic" in esc["reason"] and "Resume the run" in esc["reason"]
        # calls 1-5 plain, call 6 warned (re-plan note, hotter), call 7 stopped before it ran
        assert model.calls == 6
        assert [warned(r) for r in model.requests] == [False] * 5 + [True]
        assert model.requests[5].temperature == pytest.approx(1.0)
        assert model.requests[5].messages[-1].role == "system"
        assert len(res.state["plans"]) == 6  # state intact: six committed steps
        events = await rt.store.list_events(res.run_id)
        kinds = [e.type for e in events if e.type.startswith("loop")]
        assert kinds == ["loop_warning", "loop_guard_tripped"]
        warning = next(e for e in events if e.type == "loop_warning")
        assert warning.data["replan"] is True and warning.data["temperature"] == 1.0
        assert [k for k, _ in audit.records] == ["loop_guard.warning", "loop_guard.trip"]

        # bad answers are refused; a plain resume starts a fresh window: 5 new thoughts, a
        # warning on the 6th call, a trip before the 7th
        with pytest.raises(InvalidInputError, match="semantic"):
            await rt.resume(res.run_id, {"raise_limit": {"semantic": 1.5}})
        with pytest.raises(InvalidInputError, match="raise_limit"):
            await rt.resume(res.run_id, {"more": True})
        again = await rt.resume(res.run_id)
        assert isinstance(again, RunResult) and again.status is RunStatus.ESCALATED
        assert again.escalation is not None and again.escalation["details"]["seen"] == 12
        assert model.calls == 12
        assert [warned(r) for r in model.requests[6:]] == [False] * 5 + [True]


async def test_a_loop_that_re_plans_after_the_warning_goes_on() -> None:
    model = FunctionModel(lambda r: NEW if warned(r) else SAME, name="listens")
    audit = Audit()
    wf = build(model, SemanticLoopGuard(window=5, embedder=TopicEmbedder()), audit)
    async with Runtime(MemoryStore()) as rt:
        res = await rt.run(wf, {})
    assert res.status is RunStatus.COMPLETED
    assert res.state["plans"] == [SAME] * 5 + [NEW]
    assert [k for k, _ in audit.records] == ["loop_guard.warning"]


async def test_a_raised_threshold_tolerates_the_similarity() -> None:
    texts = iter([f"{SAME} (attempt {i % 2})" for i in range(100)])
    model = FunctionModel(lambda r: next(texts), name="alternates")

    class Half(TopicEmbedder):
        async def embed(self, texts: Sequence[str]) -> list[list[float]]:
            # the two alternating texts share half their direction: cosine 0.5
            return [[1.0, 1.0, 0.0] if t.endswith("0)") else [1.0, 0.0, 1.0] for t in texts]

        dimensions = 3

    wf = build(model, SemanticLoopGuard(window=4, threshold=0.5, embedder=Half()), Audit())
    async with Runtime(MemoryStore(), max_steps=12) as rt:
        res = await rt.run(wf, {})
        # mean pairwise cosine of 4 alternating thoughts: (2 pairs of 1.0 + 4 of 0.5)/6 = 0.667
        assert res.status is RunStatus.ESCALATED
        assert res.escalation is not None
        assert res.escalation["details"]["score"] == pytest.approx(2 / 3, abs=1e-3)
        again = await rt.resume(res.run_id, {"raise_limit": {"semantic": 0.7}})
        assert isinstance(again, RunResult)
        # no more loop trips: it runs on until the engine's step limit
        assert again.escalation is not None and again.escalation["kind"] == "step_limit"
        run = await rt.store.get_run(res.run_id)
        assert run.metadata["loop_guards"] == {"semantic_since": 5, "semantic": 0.7}


async def test_real_minilm_tells_near_duplicates_from_different_thoughts() -> None:
    from tether.llm.embeddings import default_embedder

    near = [
        "The refund for order 7 did not go through. I will call refund_order for order 7 again.",
        "The refund for order 7 did not go through, so I will call refund_order for order 7 again.",
        "The refund of order 7 did not go through. I will call refund_order for order 7 again.",
        "The refund for order 7 did not go through. I'll call refund_order for order 7 again.",
        "The refund for order 7 did not go through! I will call refund_order for order 7 again.",
    ]
    different = [
        near[0],
        "Let me look up the customer's shipping address before answering.",
        "The weather in Paris tomorrow will be sunny with light wind.",
        "I will summarise the quarterly revenue report for the finance team.",
        "The customer asked to change the delivery date to next Friday.",
    ]
    embedder = default_embedder()
    assert await mean_pairwise_cosine(embedder, near) > 0.95
    assert await mean_pairwise_cosine(embedder, different) < 0.5

    # and end to end, the guard with its default embedder (MiniLM) on a looping model
    texts = iter(near * 4)
    model = FunctionModel(lambda r: next(texts), name="minilm-loop")
    wf = build(model, SemanticLoopGuard(), Audit())
    async with Runtime(MemoryStore()) as rt:
        res = await rt.run(wf, {})
    assert res.status is RunStatus.ESCALATED
    assert res.escalation is not None and res.escalation["details"]["guard"] == "semantic"
    assert res.escalation["details"]["score"] > 0.95
    assert model.calls == 6 and warned(model.requests[5])


def test_thoughts_include_the_tool_calls() -> None:
    text = thought_of(
        {"text": "refunding", "tool_calls": [{"name": "refund", "arguments": {"order": 7}}]}
    )
    assert text == 'refunding\nrefund {"order":7}'
    assert thought_of({"text": "", "tool_calls": []}) is None
    assert thought_of("not a response") is None


def test_bad_configuration_is_refused() -> None:
    fake = TopicEmbedder()
    with pytest.raises(ConfigurationError, match="window"):
        SemanticLoopGuard(window=1, embedder=fake)
    with pytest.raises(ConfigurationError, match="threshold"):
        SemanticLoopGuard(threshold=0.0, embedder=fake)
    for text in ("0.9", float("nan")):  # the text was a TypeError before
        with pytest.raises(
            ConfigurationError, match=r"threshold is a cosine similarity in \(0, 1\]"
        ):
            SemanticLoopGuard(threshold=text, embedder=fake)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="temperature"):
        SemanticLoopGuard(base_temperature=3.0, embedder=fake)


class CountingEmbedder(TopicEmbedder):
    def __init__(self) -> None:
        super().__init__()
        self.texts: list[str] = []

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        self.texts += texts
        return await super().embed(texts)


async def test_each_thought_is_embedded_once() -> None:
    """The window slides by one thought per call: a check embeds only what it has not seen
    (a long run does not pay the whole window's embeddings before every model call)."""
    replies = iter([f"plan {i}: try something else" for i in range(12)] + [NEW])
    model = FunctionModel(lambda r: next(replies), name="varied")
    embedder = CountingEmbedder()
    wf = build(model, SemanticLoopGuard(window=5, embedder=embedder), Audit())
    async with Runtime(MemoryStore()) as rt:
        res = await rt.run(wf, {})
    assert res.status is RunStatus.COMPLETED and len(res.state["plans"]) == 13
    assert len(embedder.texts) == len(set(embedder.texts)) == 12  # every thought, once
