"""An approval workflow driven from separate processes: `start` parks it on an interrupt,
`resume` (a fresh process) answers it. The charge before the interrupt is a journaled effect."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import sys
from typing import Any, TypedDict

from tether import END, START, Graph, RunContext, Runtime, interrupt
from tether.store.sqlite import SqliteStore


class State(TypedDict, total=False):
    amount: int
    charge_id: str
    approved: bool


def charge_card(ledger: str, amount: int) -> str:
    db = sqlite3.connect(ledger, isolation_level=None)
    db.execute("CREATE TABLE IF NOT EXISTS charges (amount INT)")
    db.execute("INSERT INTO charges VALUES (?)", (amount,))
    n = db.execute("SELECT COUNT(*) FROM charges").fetchone()[0]
    db.close()
    return f"ch_{n}"


async def charge(state: State, ctx: RunContext) -> dict[str, Any]:
    ledger = ctx.metadata["ledger"]
    charge_id = await ctx.effect("charge", charge_card, ledger, state["amount"])
    answer = interrupt({"question": f"ship order charged as {charge_id}?"})
    return {"charge_id": charge_id, "approved": answer == "yes"}


graph = Graph(State, name="approval")
graph.add_node("charge", charge, phase="tool")
graph.add_edge(START, "charge")
graph.add_edge("charge", END)
workflow = graph.compile()


async def main(cmd: str, db: str, run_id: str, arg: str) -> None:
    async with Runtime(SqliteStore(db), workflows=[workflow], recover=False) as rt:
        if cmd == "start":
            res = await rt.run(workflow, {"amount": 42}, run_id=run_id, metadata={"ledger": arg})
        else:
            res = await rt.resume(run_id, arg)  # type: ignore[assignment]
        print(
            json.dumps(
                {
                    "status": res.status.value,
                    "state": res.state,  # type: ignore[union-attr]
                    "interrupts": res.interrupts,
                }
            )
        )  # type: ignore[union-attr]


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
