"""A worker process whose one node holds its run until a gate file appears: the takeover tests
SIGKILL it while it holds the run (with a long lease) and watch who continues the run, and when.

``python -m tests.durability.takeover_app URL RUN_ID GATE TTL start|join``: ``start`` starts the
run here, ``join`` only waits for it (recovery claims it). The worker id comes from
``TETHER_WORKER_ID``. Prints ``OPENED <t>``, ``HOLDING <owner>`` (the node runs, gate closed),
``RESUMED <owner> <t>`` (the node runs, gate open) and the final status, ``t`` from time.time().
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from typing import Any, TypedDict

from tether import END, START, Graph, RunContext, Runtime


class State(TypedDict, total=False):
    gate: str
    by: str


async def hold(state: State, ctx: RunContext) -> dict[str, Any]:
    gate = state["gate"]
    if not os.path.exists(gate):
        print(f"HOLDING {ctx._host.owner}", flush=True)
        while not os.path.exists(gate):
            await asyncio.sleep(0.02)
    else:
        print(f"RESUMED {ctx._host.owner} {time.time():.6f}", flush=True)
    return {"by": ctx._host.worker_id}


graph = Graph(State, name="takeover")
graph.add_node("hold", hold)
graph.add_edge(START, "hold").add_edge("hold", END)
workflow = graph.compile()


async def main(url: str, run_id: str, gate: str, ttl: float, mode: str) -> None:
    async with Runtime(url, workflows=[workflow], lease_ttl=ttl, poll_interval=0.05) as rt:
        print(f"OPENED {time.time():.6f}", flush=True)
        if mode == "start":
            await rt.start(workflow, {"gate": gate}, run_id=run_id)
        res = await rt.wait(run_id)
        print(res.status.value, flush=True)


if __name__ == "__main__":
    url, run_id, gate, ttl, mode = sys.argv[1:6]
    asyncio.run(main(url, run_id, gate, float(ttl), mode))
