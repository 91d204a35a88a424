"""A worker process for ``test_timers_restart``: serves runs of ``NAP`` from a SQLite file
until it is killed. ``NAP`` records an effect, sleeps 2 s durably, records another."""

from __future__ import annotations

import asyncio
import sys
from typing import Annotated, Any, TypedDict

from tether import END, START, Graph, RunContext, Runtime, append
from tether.store.sqlite import SqliteStore


class S(TypedDict):
    log: Annotated[list[str], append]


def record(path: str, line: str) -> None:
    with open(path, "a") as f:
        f.write(line + "\n")


async def nap(s: Any, ctx: RunContext) -> dict[str, Any]:
    out = ctx.deps["out"]
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


async def main(db: str, out: str) -> None:
    store = SqliteStore(db)
    async with Runtime(store, workflows=[NAP], poll_interval=0.1, deps={"out": out}):
        print("ready", flush=True)
        await asyncio.Future()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
