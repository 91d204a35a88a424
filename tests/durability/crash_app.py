"""A 50-step graph with parallel nodes and journaled side effects, run by a worker process that
the crash test SIGKILLs at random points.

Each node checks, before doing anything, that its own writes are not already durable (a
journaled node write or a committed checkpoint for its step); if they are, it records a
violation: that is the "no node whose writes were journaled runs again" guarantee, checked from
inside. Each node also performs one idempotent side effect against an "external service" (a
separate SQLite file that dedupes by idempotency key), and counts every attempt.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import sys
from pathlib import Path
from typing import Annotated, Any, TypedDict

from tether import END, START, Graph, RunContext, Runtime, StepNotFoundError, append
from tether.store.sqlite import SqliteStore

ROUNDS = 17  # fan + 3 parallel workers + join = 3 steps a round -> 51 steps
WORKERS = ("w1", "w2", "w3")


class State(TypedDict):
    round: int
    items: Annotated[list[str], append]


class External:
    """The outside world: applies each effect once per idempotency key, logs every attempt."""

    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(path, isolation_level=None, timeout=30)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("CREATE TABLE IF NOT EXISTS effects (key TEXT PRIMARY KEY, n INT)")
        self.db.execute("CREATE TABLE IF NOT EXISTS attempts (key TEXT, pid INT)")
        self.db.execute("CREATE TABLE IF NOT EXISTS violations (task TEXT, why TEXT)")

    def apply(self, key: str) -> int:
        self.db.execute("INSERT INTO attempts VALUES (?, ?)", (key, 0))
        self.db.execute("INSERT OR IGNORE INTO effects VALUES (?, 1)", (key,))
        return 1

    def violation(self, task: str, why: str) -> None:
        self.db.execute("INSERT INTO violations VALUES (?, ?)", (task, why))


EXTERNAL: External | None = None


async def _guard(ctx: RunContext) -> None:
    """Record a violation if this task's writes are already durable."""
    assert EXTERNAL is not None
    for w in await ctx._store.get_node_writes(ctx.run_id, ctx.step):
        if w.task_id == ctx.task_id and w.status == "done":
            EXTERNAL.violation(ctx.task_id, "journaled node ran again")
    try:
        await ctx._store.get_checkpoint(ctx.run_id, ctx.step)
        EXTERNAL.violation(ctx.task_id, "committed step ran again")
    except StepNotFoundError:
        pass


async def _work(state: Any, ctx: RunContext) -> dict[str, Any]:
    await _guard(ctx)
    await asyncio.sleep(random.uniform(0, 0.02))
    assert EXTERNAL is not None
    ext = EXTERNAL
    await ctx.effect("external", lambda: ext.apply(f"{ctx.run_id}:{ctx.task_id}"), idempotent=True)
    await asyncio.sleep(random.uniform(0, 0.005))
    return {"items": [f"r{state['round']}:{ctx.node}"]}


async def fan(state: State, ctx: RunContext) -> dict[str, Any]:
    await _guard(ctx)
    return {}


async def join(state: State, ctx: RunContext) -> dict[str, Any]:
    await _guard(ctx)
    return {"round": state["round"] + 1}


def route(state: State) -> str:
    return "fan" if state["round"] < ROUNDS else END


graph = Graph(State, name="crashy")
graph.add_node("fan", fan)
for w in WORKERS:
    graph.add_node(w, _work)
    graph.add_edge("fan", w)
graph.add_node("join", join)
graph.add_edge(list(WORKERS), "join")
graph.add_edge(START, "fan")
graph.add_conditional_edges("join", route, ["fan", END])
workflow = graph.compile()


def expected_items() -> list[str]:
    return [f"r{r}:{w}" for r in range(ROUNDS) for w in WORKERS]


async def main(db: str, external: str, run_id: str) -> None:
    global EXTERNAL
    EXTERNAL = External(Path(external))
    store = SqliteStore(db)
    async with Runtime(
        store, workflows=[workflow], lease_ttl=0.6, poll_interval=0.05, max_steps=200
    ) as rt:
        handle = await rt.start(workflow, {"round": 0}, run_id=run_id, idempotency_key=run_id)
        print("STARTED" if handle.created else "JOINED", flush=True)
        seen = (await rt.get_run(run_id)).step
        async for ev in handle.events():  # live while it runs here, polled while it waits
            if ev.type == "step_finished" and ev.step is not None and ev.step > seen:
                seen = ev.step
                print(f"STEP {ev.step}", flush=True)
        run = await rt.get_run(run_id)
        print(run.status.value, flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3]))
