"""A run whose node remembers through the memory plane (the Python API and the ``remember``
tool), run by a process that SIGKILLs itself right after the memory store's write, before the
run's journal records the result: the window in which a resumed run used to store it twice.

``python remember_crash_app.py DB RUN_ID crash|resume``; prints the run's final status.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Sequence
from typing import Any, TypedDict

from tether import END, START, Graph, RunContext, Runtime
from tether.llm import HashingEmbedder
from tether.memory import MemoryPlane, MemoryScope, NewMemory, SqliteMemory
from tether.memory.types import Memory
from tether.store.sqlite import SqliteStore
from tether.tools import ToolExecutor

TEXTS = ("the user prefers window seats", "the user is allergic to peanuts")


class State(TypedDict, total=False):
    ids: list[str]


class CrashingMemory(SqliteMemory):
    """Dies (SIGKILL) right after the ``crash_on``-th write is committed."""

    crash_on = 0
    writes = 0

    async def add_many(self, items: Sequence[NewMemory], *, scope: MemoryScope) -> list[Memory]:
        out = await super().add_many(items, scope=scope)
        CrashingMemory.writes += 1
        if CrashingMemory.writes == self.crash_on:
            os.kill(os.getpid(), signal.SIGKILL)
        return out


async def main(db: str, run_id: str, crash_on: int) -> None:
    memory = CrashingMemory(db, embedder=HashingEmbedder())
    memory.crash_on = crash_on
    await memory.setup()
    plane = MemoryPlane(memory)
    store = SqliteStore(db)
    tools = ToolExecutor(plane.tools(runs=store))

    async def node(state: State, ctx: RunContext) -> dict[str, Any]:
        first = await plane.remember(TEXTS[0], scope=MemoryScope("acme"))
        second = await tools.call("remember", {"text": TEXTS[1]}, ctx=ctx)
        return {"ids": [first.id, second.unwrap()["id"]]}

    g = Graph(State, name="remember_crash")
    g.add_node("node", node).add_edge(START, "node").add_edge("node", END)
    wf = g.compile()
    async with Runtime(store, workflows=[wf], lease_ttl=0.5, poll_interval=0.05) as rt:
        handle = await rt.start(wf, {}, run_id=run_id, idempotency_key=run_id, tenant="acme")
        async for _ in handle.events():
            pass
        print((await rt.get_run(run_id)).status.value, flush=True)
    await memory.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
