"""A workflow whose node streams a model's answer after a human says go (``--app
tests.server.live_app:workflows``): the tokens exist only live, in the process running it."""

from __future__ import annotations

from typing import Any, TypedDict

from tether import END, START, Graph, RunContext, interrupt
from tether.llm.fakes import ScriptedModel

REPLY = "Paris is the capital of France, on the Seine."


class Talk(TypedDict, total=False):
    answer: str


async def talk(state: Talk, ctx: RunContext) -> dict[str, Any]:
    interrupt({"question": "talk now?"})  # parks the run: the follower is there before it talks
    model = ScriptedModel([REPLY], stream_chunk=3)
    reply = await model.chat("What is the capital of France?", stream=True)
    return {"answer": reply.text}


graph = Graph(Talk, name="talk")
graph.add_node("talk", talk).add_edge(START, "talk").add_edge("talk", END)
workflows = [graph.compile()]
