"""The workflow of ``test_timers_restart``, served by ``tether worker --app
tests.graph.timer_app:NAP`` processes: ``NAP`` records an effect (a line in the file named by
``$TIMER_APP_OUT``), sleeps 2 s durably, records another."""

from __future__ import annotations

import os
from typing import Annotated, Any, TypedDict

from tether import END, START, Graph, RunContext, append


class S(TypedDict):
    log: Annotated[list[str], append]


def record(path: str, line: str) -> None:
    with open(path, "a") as f:
        f.write(line + "\n")


async def nap(s: Any, ctx: RunContext) -> dict[str, Any]:
    out = os.environ["TIMER_APP_OUT"]
    await ctx.effect("before", record, out, "before")
    await ctx.sleep(2)
    await ctx.effect("after", record, out, "after")
    return {"log": ["woke"]}


def build() -> Any:
    g = Graph(S, name="nap")
    g.add_node("nap", nap)
    g.add_edge(START, "nap")
    g.add_edge("nap", END)
    return g.compile()


NAP = build()
