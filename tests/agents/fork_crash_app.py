"""A fork-join parent over three child runs, for the SIGKILL test (``python -m
tests.agents.fork_crash_app DB SINK RUN_ID``).

Each child records one line in ``SINK/effects.log`` through a journaled effect, then waits
until ``SINK/gate`` exists. The test kills the first process while the children wait, opens
the gate, and runs a second process: it takes the parent and its children over and must
finish them without recording any line twice.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any, TypedDict

from tether import END, START, Graph, RunContext, Runtime
from tether.agents import ForkJoinOptions, fork_join
from tether.store.sqlite import SqliteStore

SINK = Path(os.environ.get("FORK_SINK", "."))


class Branch(TypedDict, total=False):
    item: str
    done: str


def record(line: str) -> str:
    fd = os.open(SINK / "effects.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{line}\n".encode())
    finally:
        os.close(fd)
    return line


async def work(state: Branch, ctx: RunContext) -> dict[str, Any]:
    await ctx.effect("record", record, f"{state['item']} {os.getpid()}", idempotent=True)
    for _ in range(2400):  # up to 120 s: the test opens the gate long before
        if (SINK / "gate").exists():
            break
        await asyncio.sleep(0.05)
    return {"done": state["item"].upper()}


branch_graph = Graph(Branch, name="fork_crash_branch")
branch_graph.add_node("work", work)
branch_graph.add_edge(START, "work").add_edge("work", END)
branch = branch_graph.compile()
parent = fork_join(ForkJoinOptions(branch=branch), name="fork_crash_parent")
ITEMS = ["a", "b", "c"]


async def main(db: str, run_id: str) -> None:
    async with Runtime(
        SqliteStore(db), workflows=[parent, branch], lease_ttl=0.5, poll_interval=0.05
    ) as rt:
        handle = await rt.start(
            parent,
            {"branches": [{"item": i} for i in ITEMS]},
            run_id=run_id,
            idempotency_key=run_id,
        )
        print("STARTED" if handle.created else "JOINED", flush=True)
        res = await rt.wait(run_id, timeout=240)
        print(res.status.value, flush=True)


if __name__ == "__main__":
    SINK = Path(sys.argv[2])
    asyncio.run(main(sys.argv[1], sys.argv[3]))
