"""The workflow the worker-process tests run with ``tether worker --app
tests.worker.worker_app:workflows``.

``chores`` takes ``{"sink": DIR, "steps": N, "ms": [LO, HI]}`` and runs its one node N times, one
step each: the node appends ``begin RUN STEP PID`` to ``DIR/begin.log`` (a marker, not an
effect), sleeps LO..HI ms (and, with ``"gate": PATH``, its first step waits until that file
exists), then performs its effect through ``ctx.effect``: it appends
``effect RUN STEP PID`` to ``DIR/effects.log``. Appends are single ``write`` calls on an
``O_APPEND`` descriptor, so lines from many processes never interleave and a line written
before a SIGKILL is kept. A step whose effect ran twice shows up as a repeated line.

With ``"keyed": true`` the effect is idempotent, as a payment API with idempotency keys is:
it is declared ``idempotent=True`` (a worker taking over a run killed inside the call sends it
again instead of escalating) and the downstream dedupes by key: the first delivery of
``RUN-STEP`` creates ``DIR/keys/RUN-STEP`` (``O_EXCL``) and appends its effect line, a repeat
appends ``resent RUN STEP PID`` to ``DIR/resent.log`` and changes nothing.
"""

from __future__ import annotations

import asyncio
import os
import random
from typing import Any, TypedDict

from tether import END, START, Graph, RunContext


class Chores(TypedDict, total=False):
    sink: str
    steps: int
    ms: list[int]
    gate: str
    keyed: bool
    i: int


def deliver(sink: str, run_id: str, step: int, line: str) -> None:
    """The keyed downstream: performs ``RUN-STEP`` once, however often it is sent."""
    keys = os.path.join(sink, "keys")
    os.makedirs(keys, exist_ok=True)
    try:
        fd = os.open(os.path.join(keys, f"{run_id}-{step}"), os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    except FileExistsError:
        append(os.path.join(sink, "resent.log"), f"resent {run_id} {step} {os.getpid()}")
        return
    os.close(fd)
    append(os.path.join(sink, "effects.log"), line)


def append(path: str, line: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


async def work(state: Chores, ctx: RunContext) -> dict[str, Any]:
    i = state.get("i", 0)
    sink = state["sink"]
    append(os.path.join(sink, "begin.log"), f"begin {ctx.run_id} {i} {os.getpid()}")
    lo, hi = state.get("ms", [10, 50])
    await asyncio.sleep(random.uniform(lo, hi) / 1000)
    gate = state.get("gate")
    while i == 0 and gate and not os.path.exists(gate):
        await asyncio.sleep(0.02)
    line = f"effect {ctx.run_id} {i} {os.getpid()}"
    if state.get("keyed"):
        await ctx.effect("pay", deliver, sink, ctx.run_id, i, line, idempotent=True)
    else:
        await ctx.effect("touch", append, os.path.join(sink, "effects.log"), line)
    return {"i": i + 1}


def again(state: Chores) -> str:
    return "work" if state.get("i", 0) < state.get("steps", 1) else END


graph = Graph(Chores, name="chores")
graph.add_node("work", work)
graph.add_edge(START, "work")
graph.add_conditional_edges("work", again, ["work", END])
workflow = graph.compile()
workflows = [workflow]
