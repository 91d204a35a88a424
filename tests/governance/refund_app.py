"""A runaway support agent for the loop guard tests: a scripted model that reads the refund
API's ambiguous "accepted" as a failure and asks for the same refund again and again, and a
fake payment ledger (a file: one line per refund actually paid) behind the refund tool.

    python -m tests.governance.refund_app DB LEDGER RUN_ID

runs (or, after a crash, recovers) the run on the SQLite file DB and prints its status and the
ledger's refunds. ``LEDGER.crash`` present makes the agent kill its own process (SIGKILL) right
after the refund numbered in that file was paid and journaled, before its step committed.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Any, TypedDict

from tether import END, START, Graph, RunContext, Runtime
from tether.governance import Governance, GovernancePart, StutterGuard
from tether.graph.builder import Workflow
from tether.llm.fakes import ScriptedModel, tool_call
from tether.store.sqlite import SqliteStore
from tether.tools import ToolExecutor, tool


class Ticket(TypedDict, total=False):
    order_id: int
    attempts: list[str]


class Ledger:
    """The payment provider's book: a file with one line per refund paid."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def pay(self, order_id: int, cents: int) -> int:
        with self.path.open("a") as f:
            f.write(f"refund {order_id} {cents}\n")
            f.flush()
            os.fsync(f.fileno())
        return len(self.refunds())

    def refunds(self) -> list[str]:
        return self.path.read_text().splitlines() if self.path.exists() else []


def runaway_model() -> ScriptedModel:
    """Asks for the same refund on every turn, forever."""
    return ScriptedModel(
        [tool_call("refund_order", {"order_id": 7, "amount_cents": 2500})], cycle=True
    )


def build(ledger: Ledger, guards: list[GovernancePart] | None = None) -> Workflow:
    @tool(scope="write", name="refund_order")
    def refund_order(order_id: int, amount_cents: int) -> dict[str, Any]:
        """Refund an order on the payment provider."""
        paid = ledger.pay(order_id, amount_cents)
        # the provider's ambiguous answer: "accepted", settlement pending
        return {"status": "accepted", "settled": False, "paid": paid}

    tools = ToolExecutor([refund_order])
    model = runaway_model()
    crash = ledger.path.with_suffix(".crash")

    async def agent(state: Ticket, ctx: RunContext) -> dict[str, Any]:
        said = await model.chat(f"refund order {state['order_id']}", max_tokens=64)
        done: list[str] = []
        for call in said.tool_calls:
            res = await tools.call(call.name, call.arguments, ctx=ctx)
            done.append(f"{call.name}: {res.value if res.ok else res.error}")
            if crash.exists() and res.ok and res.value["paid"] == int(crash.read_text()):
                crash.unlink()
                os.kill(os.getpid(), signal.SIGKILL)  # paid and journaled, step unfinished
        return {"attempts": [*state.get("attempts", []), *done]}

    def route(state: Ticket) -> str:
        return "agent"  # the model never says it is done: it thinks the refund failed

    g = Graph(Ticket, name="runaway_refunds")
    g.add_node("agent", agent)
    g.add_edge(START, "agent")
    g.add_conditional_edges("agent", route, ["agent", END])
    guard_list = guards if guards is not None else [StutterGuard(max_repeats=3)]
    return g.compile(governance=Governance(guards=guard_list))


async def main(db: str, ledger_path: str, run_id: str) -> None:
    ledger = Ledger(Path(ledger_path))
    wf = build(ledger)
    async with Runtime(SqliteStore(db), workflows=[wf], lease_ttl=0.5, poll_interval=0.05) as rt:
        await rt.start(wf, {"order_id": 7}, run_id=run_id, idempotency_key=run_id)
        res = await rt.wait(run_id, timeout=60)
        print(res.status.value, len(ledger.refunds()), len(res.state.get("attempts", [])))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3]))
