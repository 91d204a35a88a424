"""A small workflow the CLI tests drive: draft -> review (asks a human once) -> publish."""

from __future__ import annotations

import os
from typing import Annotated, Any, TypedDict

from tether import END, START, Graph, append, interrupt


class State(TypedDict, total=False):
    topic: str
    draft: str
    approved: bool
    log: Annotated[list[str], append]


def draft(state: State) -> dict[str, Any]:
    return {"draft": f"a post about {state.get('topic', 'nothing')}", "log": ["drafted"]}


def review(state: State) -> dict[str, Any]:
    answer = interrupt({"question": "publish this draft?", "draft": state.get("draft")})
    return {"approved": bool(answer), "log": [f"reviewed: {answer!r}"]}


def publish(state: State) -> dict[str, Any]:
    return {"log": ["published" if state.get("approved") else "discarded"]}


graph = Graph(State, name="cli_example")
graph.add_node("draft", draft).add_node("review", review).add_node("publish", publish)
graph.add_edge(START, "draft").add_edge("draft", "review").add_edge("review", "publish")
graph.add_edge("publish", END)
wf = graph.compile()


class Count(TypedDict, total=False):
    n: int


def flaky(state: Count) -> dict[str, Any]:
    """Fails while CLI_EXAMPLE_FAIL is set, so a retry after unsetting it completes."""
    if os.environ.get("CLI_EXAMPLE_FAIL"):
        raise RuntimeError("flaky node failed on purpose")
    return {"n": state.get("n", 0) + 1}


flaky_graph = Graph(Count, name="cli_flaky")
flaky_graph.add_node("flaky", flaky).add_edge(START, "flaky").add_edge("flaky", END)
flaky_wf = flaky_graph.compile()

workflows = [wf, flaky_wf]
