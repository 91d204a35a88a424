"""A run of five slow steps in its own process, for ``tether trace --follow``."""

from __future__ import annotations

import asyncio
import sys
from typing import Any, TypedDict

from tether import START, Graph, Runtime
from tether.store.sqlite import SqliteStore


class S(TypedDict, total=False):
    n: int


async def tick(state: S) -> dict[str, Any]:
    await asyncio.sleep(0.3)
    return {"n": state.get("n", 0) + 1}


def more(state: S) -> str:
    return "tick" if state.get("n", 0) < 5 else "__end__"


g = Graph(S, name="slow")
g.add_node("tick", tick).add_edge(START, "tick").add_conditional_edges("tick", more)
workflow = g.compile()


async def main(db: str, run_id: str) -> None:
    async with Runtime(SqliteStore(db), recover=False) as rt:
        res = await rt.run(workflow, {}, run_id=run_id)
        print(res.status.value, flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
