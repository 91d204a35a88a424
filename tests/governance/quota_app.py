"""A tenant-quota'd workflow for the quota settle tests (``test_quota_pending``), in this process
and in a child process that dies with a settle pending.

    python -m tests.governance.quota_app DB RUN_ID CALLS

runs ``RUN_ID`` (tenant ``acme``) on the SQLite file DB and prints its status. Its node makes
``CALLS`` model calls, each using less than it holds, so each call's quota settle waits for the
next reservation (``tether.governance.budget_pending``). With ``DB.crash`` present the node
kills its own process (SIGKILL) once its calls are made and journaled, the last one's settle
still pending; run again, the run is recovered and its calls replayed from the journal.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Any, TypedDict

from tether import END, START, Graph, RunContext, Runtime
from tether.governance import Governance, GovernancePart, Quota
from tether.llm.fakes import FunctionModel
from tether.llm.types import ModelRequest, ModelResponse, Usage
from tether.store.sqlite import SqliteStore

IN, OUT = 1, 2
TOK = IN + OUT
"""What each call uses: less than any call holds (its prompt and ``max_tokens``)."""
MAX_TOKENS = 8
LIMIT = 1_000_000.0


GREEDY_OUT = 100
"""What a ``greedy`` call answers: more than it holds (its settle is written at once)."""


class S(TypedDict, total=False):
    calls: int
    crash: str
    fail: bool
    greedy: list[int]
    """Which calls (by index) use more than they hold."""
    tick: float
    """Seconds the clock (``clock_hook``) moves after each call."""


def answer(request: ModelRequest) -> ModelResponse:
    out = GREEDY_OUT if "greedy" in request.messages[-1].content else OUT
    return ModelResponse(text="ok", usage=Usage(input_tokens=IN, output_tokens=out))


model = FunctionModel(answer, name="frugal")
clock_hook: list[Any] = []
"""Tests put a FakeClock here for ``tick``."""


async def node(state: S, ctx: RunContext) -> dict[str, Any]:
    for i in range(state["calls"]):
        greedy = "greedy" if i in state.get("greedy", []) else "frugal"
        await model.chat(f"{ctx.run_id}:{greedy}:{i}", max_tokens=MAX_TOKENS)
        if state.get("tick"):
            clock_hook[0].advance(state["tick"])
    crash = state.get("crash")
    if crash and os.path.exists(crash):
        os.unlink(crash)
        os.kill(os.getpid(), signal.SIGKILL)  # journaled, the last settle pending
    if state.get("fail"):
        raise RuntimeError("the node fails after its calls")
    return {}


def build(*parts: GovernancePart, name: str = "quota_pending") -> Any:
    """``parts`` (default: a quota of ``LIMIT`` tokens a day) govern the node's calls."""
    g = Graph(S, name=name)
    g.add_node("n", node)
    g.add_edge(START, "n").add_edge("n", END)
    return g.compile(governance=Governance(parts=parts or [Quota(tokens=LIMIT)]))


async def main(db: str, run_id: str, calls: int) -> None:
    wf = build()
    async with Runtime(SqliteStore(db), workflows=[wf], lease_ttl=0.5, poll_interval=0.05) as rt:
        inp: S = {"calls": calls, "crash": str(Path(db).with_suffix(".crash"))}
        await rt.start(wf, inp, run_id=run_id, idempotency_key=run_id, tenant="acme")
        res = await rt.wait(run_id, timeout=60)
        print(res.status.value)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
