"""Several live workers sharing one store under load: do they steal each other's runs?

Each run takes ``STEPS`` steps; every step performs one non-idempotent journaled effect that
takes 10-50 ms, so a run taken over while its effect is in flight escalates with
``unknown_effect_outcome``. Nobody is killed: every lease taken over is a takeover between live
workers. A worker whose owner id is in ``--block-owners`` also blocks its event loop (a CPU-bound
or blocking node) for ``--block`` seconds, once, in the fourth step of a run, while its other
runs are mid-effect.

    python -m tests.durability.lease_load_app measure URL --workers 4 --runs 300 --ttl 2
    python -m tests.durability.lease_load_app worker URL OWNER --ttl 2 --expect 300
    python -m tests.durability.lease_load_app report URL

``measure`` submits the runs, starts the workers as separate processes, waits for them and
prints one JSON line: {"takeovers": ..., "escalated": ..., "completed": ..., ...}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, TypedDict

from tether import END, START, Graph, RunContext, RunStatus, Runtime
from tether.core.lifecycle import ACTIVE, FINISHED, PARKED
from tether.store.url import open_store

STEPS = 10
SETTLED = FINISHED | PARKED
ROOT = Path(__file__).resolve().parents[2]


class State(TypedDict, total=False):
    n: int


BLOCK: dict[str, float] = {}


async def step(state: State, ctx: RunContext) -> dict[str, Any]:
    n = state.get("n", 0)
    if n == 3 and ctx._host.worker_id in BLOCK:  # once per process, with other runs in flight
        time.sleep(BLOCK.pop(ctx._host.worker_id))  # a blocking node: the event loop stands still
        print(f"BLOCKED {ctx._host.worker_id}", flush=True)

    async def work() -> int:
        await asyncio.sleep(random.uniform(0.01, 0.05))
        return n

    await ctx.effect("work", work)  # not idempotent: a takeover mid-call cannot be retried
    return {"n": n + 1}


def _route(state: State) -> str:
    return "step" if state.get("n", 0) < STEPS else END


graph = Graph(State, name="lease_load")
graph.add_node("step", step)
graph.add_edge(START, "step")
graph.add_conditional_edges("step", _route, ["step", END])
workflow = graph.compile()


async def submit(url: str, runs: int) -> None:
    async with Runtime(url, workflows=[workflow], recover=False) as rt:
        for i in range(runs):
            await rt.submit(workflow, {"n": 0}, run_id=f"load-{i:04d}")


async def worker(url: str, owner: str, ttl: float, expect: int, slots: int | None) -> None:
    opts: dict[str, Any] = {} if slots is None else {"max_concurrent_runs": slots}
    async with Runtime(
        url, workflows=[workflow], owner=owner, lease_ttl=ttl, poll_interval=0.05, **opts
    ) as rt:
        while True:
            runs = await rt.list_runs(limit=expect + 10)
            if len(runs) >= expect and all(r.status in SETTLED for r in runs):
                break
            await asyncio.sleep(0.2)


async def report(url: str) -> dict[str, Any]:
    store = open_store(url)
    await store.setup()
    try:
        runs = await store.list_runs(limit=100_000)
        takeovers = sum(max(r.lease_token - 1, 0) for r in runs)
        escalated = [r for r in runs if r.status is RunStatus.ESCALATED]
        kinds: dict[str, int] = {}
        for r in escalated:
            kind = str((r.escalation or {}).get("kind"))
            kinds[kind] = kinds.get(kind, 0) + 1
        stolen = 0
        completed_by: dict[str, int] = {}
        for r in runs:
            trs = await store.list_transitions(r.run_id)
            stolen += len({t.actor for t in trs if t.actor.startswith("worker:")}) > 1
            for t in trs:
                if t.dst is RunStatus.COMPLETED:
                    who = t.actor.removeprefix("worker:").split("|")[0]  # the worker id
                    completed_by[who] = completed_by.get(who, 0) + 1
        return {
            "runs": len(runs),
            "completed": sum(r.status is RunStatus.COMPLETED for r in runs),
            "takeovers": takeovers,
            "runs_taken_over": sum(r.lease_token > 1 for r in runs),
            "runs_run_by_two_workers": stolen,
            "escalated": len(escalated),
            "escalation_kinds": kinds,
            "completed_by": completed_by,
        }
    finally:
        await store.close()


class Watch(threading.Thread):
    """Polls the store: the least time left on any held lease of a running run (headroom)."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.done = threading.Event()
        self.headroom = float("inf")

    def run(self) -> None:
        asyncio.run(self._watch())

    async def _watch(self) -> None:
        store = open_store(self.url)
        await store.setup()
        try:
            while not self.done.is_set():
                runs = await store.list_runs(status=sorted(ACTIVE), limit=100_000)
                now = time.time()
                for r in runs:
                    if r.owner is not None:
                        self.headroom = min(self.headroom, r.lease_expires_at - now)
                await asyncio.sleep(0.02)
        finally:
            await store.close()


def measure(args: argparse.Namespace) -> dict[str, Any]:
    asyncio.run(submit(args.url, args.runs))
    watch = Watch(args.url)
    watch.start()
    started = time.monotonic()
    procs = []
    for i in range(args.workers):
        cmd = [
            sys.executable,
            "-m",
            "tests.durability.lease_load_app",
            "worker",
            args.url,
            f"w{i}",
            "--ttl",
            str(args.ttl),
            "--expect",
            str(args.runs),
        ]
        if args.slots is not None:
            cmd += ["--slots", str(args.slots)]
        if args.block:
            cmd += ["--block", str(args.block), "--block-owners", ",".join(args.block_owners)]
        path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
        env = {**os.environ, "PYTHONPATH": path}
        procs.append(subprocess.Popen(cmd, cwd=ROOT, env=env))
    for p in procs:
        p.wait(timeout=args.timeout)
    watch.done.set()
    watch.join()
    out = asyncio.run(report(args.url))
    out["min_lease_headroom_s"] = round(watch.headroom, 2)
    out["seconds"] = round(time.monotonic() - started, 1)
    out["exit_codes"] = [p.returncode for p in procs]
    return out


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("cmd", choices=["measure", "worker", "report", "submit"])
    ap.add_argument("url")
    ap.add_argument("owner", nargs="?")
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--runs", type=int, default=300)
    ap.add_argument("--expect", type=int, default=0)
    ap.add_argument("--ttl", type=float, default=2.0)
    ap.add_argument("--slots", type=int, default=None)
    ap.add_argument("--block", type=float, default=0.0)
    ap.add_argument("--block-owners", type=lambda s: s.split(","), default=[])
    ap.add_argument("--timeout", type=float, default=600)
    args = ap.parse_args(argv)
    if args.cmd == "measure":
        print(json.dumps(measure(args)), flush=True)
    elif args.cmd == "submit":
        asyncio.run(submit(args.url, args.runs))
    elif args.cmd == "report":
        print(json.dumps(asyncio.run(report(args.url))), flush=True)
    else:
        for owner in args.block_owners:
            BLOCK[owner] = args.block
        asyncio.run(worker(args.url, args.owner, args.ttl, args.expect, args.slots))


if __name__ == "__main__":
    main(sys.argv[1:])
