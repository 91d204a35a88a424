"""Workflows the A2A tests serve: ``echo`` (text in, answer out) and ``ask`` (asks a human
once through ``interrupt``, then answers with what it was told)."""

from __future__ import annotations

from typing import Any, TypedDict

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
    told = interrupt(f"what is the answer to: {state.get('question', '?')}")
    return {"answer": f"the human said {told}"}


ask_graph = Graph(Ask, name="ask")
ask_graph.add_node("ask_human", ask_human).add_edge(START, "ask_human").add_edge("ask_human", END)
ask = ask_graph.compile()

workflows = [echo, ask]
