"""An approved destructive call whose process dies during the call (the approval tests).

    python -m tests.governance.approved_crash_app DB LOG RUN_ID idem|nonidem

starts the run on the SQLite file DB; its ``wipe`` call waits for an approval, which this
process signs and grants. ``LOG.crash`` present makes the tool kill its own process (SIGKILL)
once it did its work (a line in LOG, with its idempotency key) and before its result is
journaled: the call's intent stays open, its outcome unknown.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Any, TypedDict

from tether import END, START, Graph, RunContext, Runtime
from tether.governance import Governance, PolicySet
from tether.governance.approvals import generate_key, sign
from tether.graph.builder import Workflow
from tether.store.sqlite import SqliteStore
from tether.tools import ToolExecutor, tool


class S(TypedDict, total=False):
    out: list[Any]


def wiped(log: Path) -> list[str]:
    """The idempotency key of each wipe that happened."""
    return log.read_text().split() if log.exists() else []


def build(log: Path, idempotent: bool) -> Workflow:
    crash = log.with_suffix(".crash")

    @tool(scope="destructive", idempotent=idempotent, timeout=None)
    def wipe(disk: str, idempotency_key: str) -> str:
        """Wipe a disk."""
        with log.open("a") as f:
            f.write(idempotency_key + "\n")
        if crash.exists():
            crash.unlink()
            os.kill(os.getpid(), signal.SIGKILL)  # wiped, its result not journaled
        return f"wiped {disk}"

    tools = ToolExecutor([wipe])

    async def agent(state: S, ctx: RunContext) -> dict[str, Any]:
        res = await tools.call("wipe", {"disk": "d1"}, ctx=ctx)
        return {"out": [res.ok, res.value if res.ok else type(res.error).__name__]}

    g = Graph(S, name=f"wiper-{'idem' if idempotent else 'nonidem'}")
    g.add_node("agent", agent)
    g.add_edge(START, "agent").add_edge("agent", END)
    return g.compile(governance=Governance(policies=PolicySet()))  # destructive: escalates


async def main(db: str, log: str, run_id: str, mode: str) -> None:
    wf = build(Path(log), mode == "idem")
    async with Runtime(SqliteStore(db), workflows=[wf], lease_ttl=0.5) as rt:
        key = generate_key()
        await rt.approvals.register_approver("alice", "ops", key)
        await rt.start(wf, {}, run_id=run_id, idempotency_key=run_id)
        parked = await rt.wait(run_id, timeout=60)
        assert parked.escalation is not None and parked.escalation["kind"] == "approval"
        aid = parked.escalation["details"]["approval_id"]
        await rt.approvals.approve(aid, "alice", sign(key, await rt.approvals.get(aid)))
        await rt.wait(run_id, timeout=60)  # the approved call kills this process


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
