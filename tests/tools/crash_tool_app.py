"""A worker whose tool kills its own process (SIGKILL) right after the external effect happened
and before the executor could record the result: the crash window the effect journal exists for.

    python -m tests.tools.crash_tool_app DB RUN_ID TOOL   (TOOL: pay | charge | wire;
    CRASH_EXTERNAL names the service's database)
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import sys
from pathlib import Path
from typing import Any, TypedDict

from tether import END, START, Graph, RunContext, Runtime
from tether.store.sqlite import SqliteStore
from tether.tools import ToolExecutor, tool

EXTERNAL = Path(os.environ.get("CRASH_EXTERNAL", "/nonexistent"))


def _service(key: str) -> str:
    """The outside world: applies an effect once per idempotency key; logs every attempt."""
    db = sqlite3.connect(EXTERNAL, isolation_level=None, timeout=30)
    db.execute("CREATE TABLE IF NOT EXISTS attempts (key TEXT)")
    db.execute("CREATE TABLE IF NOT EXISTS effects (key TEXT PRIMARY KEY)")
    db.execute("INSERT INTO attempts VALUES (?)", (key,))
    db.execute("INSERT OR IGNORE INTO effects VALUES (?)", (key,))
    db.close()
    crash_flag = EXTERNAL.with_suffix(".crash")
    if crash_flag.exists():
        crash_flag.unlink()
        os.kill(os.getpid(), signal.SIGKILL)  # the effect happened; the result is never recorded
    return f"done:{key}"


@tool(scope="write", idempotent=True, idempotency_key=lambda a: f"pay-{a['order']}")
def pay(order: str, idempotency_key: str) -> str:
    """Charge an order; the payment service dedupes by idempotency key."""
    return _service(idempotency_key)


@tool(scope="write", idempotent=True)
def charge(order: str, idempotency_key: str) -> str:
    """Charge an order under the run's default key (no rule); the service dedupes by it."""
    return _service(idempotency_key)


@tool(scope="write")
def wire(order: str) -> str:
    """Wire money; the bank has no idempotency keys, so a retry could pay twice."""
    return _service(f"wire-{order}")


class State(TypedDict, total=False):
    tool: str
    receipt: str


async def act(state: State, ctx: RunContext) -> dict[str, Any]:
    executor: ToolExecutor = ctx.deps["tools"]
    res = await executor.call(state["tool"], {"order": "A1"}, ctx=ctx)
    return {"receipt": res.unwrap()}


graph = Graph(State, name="crash_tool")
graph.add_node("act", act, phase="tool")
graph.add_edge(START, "act").add_edge("act", END)
workflow = graph.compile()


async def main(db: str, run_id: str, tool_name: str) -> None:
    store = SqliteStore(db)
    tools = ToolExecutor([pay, charge, wire], store)
    async with Runtime(
        store, workflows=[workflow], lease_ttl=0.5, poll_interval=0.05, deps={"tools": tools}
    ) as rt:
        await rt.start(workflow, {"tool": tool_name}, run_id=run_id, idempotency_key=run_id)
        res = await rt.wait(run_id, timeout=30)
        print(res.status.value, flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3]))
