"""Workflows the server tests serve.

* ``echo``: one step, text in, shouted text out;
* ``ask``: asks a human once (``interrupt``), then answers with what it was told;
* ``count``: ``n`` steps of a loop, each sleeping ``pause`` seconds (a run that lasts);
* ``refunds``: a governed tool call that needs a signed approval.
"""

from __future__ import annotations

import asyncio
from typing import Any, TypedDict

from tests.governance.approvals_app import build as build_refunds
from tether import END, START, Graph, interrupt


class Echo(TypedDict, total=False):
    text: str
    answer: str


def shout(state: Echo) -> dict[str, Any]:
    return {"answer": state.get("text", "").upper()}


echo_graph = Graph(Echo, name="echo")
echo_graph.add_node("shout", shout).add_edge(START, "shout").add_edge("shout", END)
echo = echo_graph.compile()


class Ask(TypedDict, total=False):
    question: str
    answer: str


def ask_human(state: Ask) -> dict[str, Any]:
    told = interrupt({"question": state.get("question", "?")})
    return {"answer": f"the human said {told}"}


ask_graph = Graph(Ask, name="ask")
ask_graph.add_node("ask_human", ask_human).add_edge(START, "ask_human").add_edge("ask_human", END)
ask = ask_graph.compile()


class Count(TypedDict, total=False):
    n: int
    i: int
    pause: float


async def tick(state: Count) -> dict[str, Any]:
    await asyncio.sleep(float(state.get("pause", 0.0)))
    return {"i": state.get("i", 0) + 1}


def more(state: Count) -> str:
    return "tick" if state.get("i", 0) < state.get("n", 3) else END


count_graph = Graph(Count, name="count")
count_graph.add_node("tick", tick).add_edge(START, "tick")
count_graph.add_conditional_edges("tick", more, ["tick", END])
count = count_graph.compile()

refunds = build_refunds(name="refunds")

workflows = [echo, ask, count, refunds]
