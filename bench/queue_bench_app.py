"""The queue bench's workflows and its worker process (project venv).

    .venv/bin/python bench/queue_bench_app.py URL [--concurrency N] [--poll S] [--ttl S]

runs one worker: a ``tether.worker.Worker`` (what ``tether worker`` runs: a
``Runtime(recover=True)`` with a concurrency limit and a registry row) serving the bench's
workflows until SIGTERM/SIGINT, printing ``READY <pid>`` once it claims runs (``--profile
FILE``: under cProfile, stats written to FILE on exit). Timestamps are ``time.time()`` (the
driver and every worker run on one machine, so their clocks agree).

Workflows (module level, so ``workflow_ref`` finds them from any process):

* ``qb_one``: one node that returns ``{"t": time.time()}`` when it starts: the trivial 1-step
  run of the throughput and enqueue→start figures.
* ``qb_ask``: ``ask`` parks on ``interrupt()``; ``after`` returns ``{"t": time.time()}``: the
  resume wake-up.
* ``qb_steps``: ``steps`` node looping ``n`` times; each step sleeps ``sleep_ms`` (a fixed value, or
  10-50 ms drawn from the run id and the step when 0), then performs one journaled effect
  (``ctx.effect``; only in the last step with ``fx_last_only``): a line appended to the file
  ``$QB_LOG`` with the effect's key. Each step also logs its start. The fault and chaos measures
  read that log to count effects done twice and to time kill → resumed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import time
from pathlib import Path
from typing import Any, TypedDict

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tether import END, START, Graph, RunContext, interrupt
from tether.worker import Worker


class OneState(TypedDict, total=False):
    t: float


class AskState(TypedDict, total=False):
    answer: str
    t: float


class StepsState(TypedDict, total=False):
    n: int
    i: int
    sleep_ms: int
    fx_last_only: bool


def _go(state: OneState) -> dict[str, float]:
    return {"t": time.time()}


def _ask(state: AskState) -> dict[str, str]:
    return {"answer": str(interrupt({"question": "ok?"}))}


def _after(state: AskState) -> dict[str, float]:
    return {"t": time.time()}


_LOG_FD: int | None = None


def log_line(text: str) -> None:
    """Append one line to ``$QB_LOG`` (O_APPEND: lines of concurrent processes never mix)."""
    global _LOG_FD
    path = os.environ.get("QB_LOG")
    if not path:
        return
    if _LOG_FD is None:
        _LOG_FD = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.write(_LOG_FD, (text + "\n").encode())


def _effect(key: str) -> str:
    log_line(f"fx {key} {os.getpid()} {time.time():.6f}")
    return key


async def _step(state: StepsState, ctx: RunContext) -> dict[str, int]:
    i = state.get("i", 0)
    log_line(f"start {ctx.run_id} {i} {os.getpid()} {time.time():.6f}")
    ms = state.get("sleep_ms", 0) or random.Random(f"{ctx.run_id}:{i}").uniform(10, 50)
    await asyncio.sleep(ms / 1000)
    if not state.get("fx_last_only") or i + 1 >= state.get("n", 10):
        await ctx.effect("fx", _effect, f"{ctx.run_id}:{i}", idempotent=True)
    return {"i": i + 1}


def _build() -> tuple[Any, Any, Any]:
    g1 = Graph(OneState, name="qb_one")
    g1.add_node("go", _go)
    g1.add_edge(START, "go").add_edge("go", END)

    g2 = Graph(AskState, name="qb_ask")
    g2.add_node("ask", _ask)
    g2.add_node("after", _after)
    g2.add_edge(START, "ask").add_edge("ask", "after").add_edge("after", END)

    g3 = Graph(StepsState, name="qb_steps")
    g3.add_node("steps", _step)
    g3.add_edge(START, "steps")
    g3.add_conditional_edges("steps", lambda s: END if s["i"] >= s.get("n", 10) else "steps")
    return g1.compile(), g2.compile(), g3.compile()


one, ask, steps = _build()
WORKFLOWS = (one, ask, steps)


async def serve(url: str, concurrency: int, poll: float, ttl: float) -> int:
    """One ``tether.worker.Worker`` (what ``tether worker`` runs) until SIGTERM/SIGINT."""
    worker = Worker(
        url,
        WORKFLOWS,
        concurrency=concurrency,
        poll_interval=poll,
        lease_ttl=ttl,
        grace=5.0,
    )
    worker.install_signal_handlers()
    running = asyncio.create_task(worker.run())
    ready = asyncio.create_task(worker.ready.wait())
    await asyncio.wait({running, ready}, return_when=asyncio.FIRST_COMPLETED)
    if worker.ready.is_set():
        print(f"READY {os.getpid()}", flush=True)
    ready.cancel()
    return await running


def main() -> None:
    ap = argparse.ArgumentParser(description="one queue-bench worker")
    ap.add_argument("url")
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--poll", type=float, default=0.5, help="the fallback poll (s)")
    ap.add_argument("--ttl", type=float, default=5.0)
    ap.add_argument("--profile", default=None, help="write cProfile stats here on exit")
    args = ap.parse_args()
    go = serve(args.url, args.concurrency, args.poll, args.ttl)
    if args.profile is None:
        asyncio.run(go)
        return
    import cProfile

    with cProfile.Profile() as prof:
        asyncio.run(go)
    prof.dump_stats(args.profile)


if __name__ == "__main__":
    main()
