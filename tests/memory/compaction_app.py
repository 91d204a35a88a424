"""A 30-turn chat run whose context window compacts every few turns, run by a process the
durability test SIGKILLs at random points.

The summariser is a scripted model that logs every live call to an "external" SQLite file and,
before answering, looks in the run's effect journal: a summary request whose result is already
journaled being asked live again is a violation (the resumed run paid twice).
"""

from __future__ import annotations

import asyncio
import os
import random
import sqlite3
import sys
from pathlib import Path
from typing import Any, TypedDict

from tether import END, START, Graph, RunContext, Runtime
from tether.core.journal import current_journal
from tether.llm import FunctionModel
from tether.llm.types import ModelRequest
from tether.memory.context_window import ContextWindow
from tether.memory.conversation import Conversation
from tether.store.sqlite import SqliteStore

TURNS = 30
GOAL = "Goal: keep the migration of the billing database on schedule."
PIN = "Never run migrations on Fridays."


class State(TypedDict):
    turn: int
    conv: dict[str, Any]


class External:
    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(path, isolation_level=None, timeout=30)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("CREATE TABLE IF NOT EXISTS summaries (digest TEXT, pid INT)")
        self.db.execute("CREATE TABLE IF NOT EXISTS violations (digest TEXT, why TEXT)")


EXTERNAL: External | None = None
STORE: SqliteStore | None = None


async def summarise(request: ModelRequest) -> str:
    assert EXTERNAL is not None and STORE is not None
    ctx = current_journal()
    assert ctx is not None
    digest = request.digest()
    for e in await STORE.list_effects(ctx.run_id):
        seen = e.kind == "model" and (e.request or {}).get("request") == digest
        if seen and e.status == "done":
            EXTERNAL.db.execute(
                "INSERT INTO violations VALUES (?, ?)", (digest, "journaled summary re-asked")
            )
    EXTERNAL.db.execute("INSERT INTO summaries VALUES (?, ?)", (digest, os.getpid()))
    await asyncio.sleep(random.uniform(0.01, 0.04))  # a kill may land mid-call
    lines = request.messages[-1].content.split("New messages:\n", 1)[1].splitlines()
    return f"Folded {len(lines)} messages; the last said {lines[-1][-30:]!r}."


def agent(request: ModelRequest) -> str:
    return f"Noted ({len(request.messages)} messages in view)."


summariser = FunctionModel(summarise, name="summariser")
chat = FunctionModel(agent, name="agent")
window = ContextWindow(summariser, limit=400, keep_recent=3)


async def turn(state: State, ctx: RunContext) -> dict[str, Any]:
    n = state["turn"]
    conv = Conversation.from_state(state["conv"])
    conv = conv.add(f"turn {n}: the table shard {n % 7} moved; checksum {n * 7919 % 10007}.")
    fitted = await window.fit(conv)
    assert fitted.messages[1].content == GOAL and fitted.tokens <= window.budget
    reply = await chat.chat(fitted.messages)
    return {"turn": n + 1, "conv": fitted.conversation.add(reply.message()).to_state()}


def route(state: State) -> str:
    return "turn" if state["turn"] < TURNS else END


graph = Graph(State, name="compacting_chat")
graph.add_node("turn", turn)
graph.add_edge(START, "turn")
graph.add_conditional_edges("turn", route, ["turn", END])
workflow = graph.compile()


def start_state() -> dict[str, Any]:
    conv = Conversation.start(GOAL, system="You are an ops assistant.", pinned={"rule": PIN})
    return {"turn": 0, "conv": conv.to_state()}


async def main(db: str, external: str, run_id: str) -> None:
    global EXTERNAL, STORE
    EXTERNAL = External(Path(external))
    STORE = SqliteStore(db)
    async with Runtime(
        STORE, workflows=[workflow], lease_ttl=0.6, poll_interval=0.05, max_steps=200
    ) as rt:
        handle = await rt.start(workflow, start_state(), run_id=run_id, idempotency_key=run_id)
        print("STARTED" if handle.created else "JOINED", flush=True)
        seen = (await rt.get_run(run_id)).step
        async for ev in handle.events():
            if ev.type == "step_finished" and ev.step is not None and ev.step > seen:
                seen = ev.step
                print(f"STEP {ev.step}", flush=True)
        print((await rt.get_run(run_id)).status.value, flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3]))
