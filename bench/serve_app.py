"""The workflows ``bench/serve.py`` serves: ``echo`` (one trivial step) and ``ticks`` (``n``
steps, each waiting ``pause`` seconds: a run whose events arrive over time)."""

from __future__ import annotations

import asyncio
from typing import Any, TypedDict

from tether import END, START, Graph


class Echo(TypedDict, total=False):
    text: str
    answer: str


def shout(state: Echo) -> dict[str, Any]:
    return {"answer": state.get("text", "").upper()}


_echo = Graph(Echo, name="echo")
_echo.add_node("shout", shout).add_edge(START, "shout").add_edge("shout", END)


class Ticks(TypedDict, total=False):
    n: int
    i: int
    pause: float


async def tick(state: Ticks) -> dict[str, Any]:
    await asyncio.sleep(float(state.get("pause", 0.0)))
    return {"i": state.get("i", 0) + 1}


def more(state: Ticks) -> str:
    return "tick" if state.get("i", 0) < state.get("n", 1) else END


_ticks = Graph(Ticks, name="ticks")
_ticks.add_node("tick", tick).add_edge(START, "tick")
_ticks.add_conditional_edges("tick", more, ["tick", END])

workflows = [_echo.compile(), _ticks.compile()]
