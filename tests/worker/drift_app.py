"""The workflow of the ``tether worker --drift`` tests (``tests.worker.drift_app:workflows``):
``helpdesk`` answers with the ``draft`` its input carries, so a test decides which run drifts."""

from __future__ import annotations

from typing import Any, TypedDict

from tether import END, START, Graph


class Helpdesk(TypedDict, total=False):
    question: str
    draft: str
    answer: str


def answer(state: Helpdesk) -> dict[str, Any]:
    return {"answer": state["draft"]}


g = Graph(Helpdesk, name="helpdesk")
g.add_node("answer", answer)
g.add_edge(START, "answer")
g.add_edge("answer", END)
workflow = g.compile()
workflows = [workflow]
