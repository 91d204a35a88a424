"""What evaluation costs, on SQLite: shadow mode on the live model's path, building a mind log,
and a KPI report.

* **shadow, per live call**: one node makes ``--calls`` journaled model calls (a
  ``FunctionModel`` answering at once), through the model itself and through a
  ``ShadowModel`` (rate 1.0 and 0.1, hashing embedder); the overhead per call is the
  difference of the run times divided by the calls (median of ``--repeat``). The shadow
  comparisons finish after the run (``drain``), off the live path: their time is reported
  apart.
* **mind log**: ``mind_log`` of a run with ``--calls`` model calls and as many tool calls.
* **KPIs**: ``kpis`` over ``--runs`` runs of one model and one tool call each, per run.

    python bench/evaluation_bench.py [--calls 200] [--runs 200] [--repeat 9]

Results: ``bench/results/evaluation.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, TypedDict

from tether import END, START, Graph, RunContext, Runtime
from tether.evaluation import ShadowModel, kpis, mind_log
from tether.llm.embeddings import HashingEmbedder
from tether.llm.fakes import FunctionModel
from tether.llm.model import Model
from tether.store.sqlite import SqliteStore
from tether.tools import ToolExecutor, tool

RESULTS = Path(__file__).parent / "results" / "evaluation.json"


class S(TypedDict, total=False):
    calls: int


@tool(scope="read", idempotent=True)
def lookup(i: int) -> dict[str, Any]:
    """Look something up."""
    return {"i": i, "found": f"item-{i}"}


tools = ToolExecutor([lookup])


def workflow(model: Model, with_tools: bool, name: str) -> Any:
    async def node(state: S, ctx: RunContext) -> dict[str, Any]:
        for i in range(state["calls"]):
            said = await model.chat(f"call {i}", max_tokens=16)
            if with_tools:
                ctx.explain(said.text)
                await tools.call("lookup", {"i": i}, ctx=ctx)
        return {}

    g = Graph(S, name=name)
    g.add_node("n", node)
    g.add_edge(START, "n").add_edge("n", END)
    return g.compile()


def live() -> FunctionModel:
    return FunctionModel(lambda request: "ok, next", name="live")


async def shadow_overhead(calls: int, repeat: int, rate: float) -> dict[str, float]:
    plain_t, shadow_t, drain_t = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteStore(Path(tmp) / "b.db")
        async with Runtime(store) as rt:
            candidate = FunctionModel(lambda request: "ok, next one", name="candidate")
            shadowed = ShadowModel(live(), candidate, store=store, rate=rate,
                                   embedder=HashingEmbedder())  # fmt: skip
            plain, wrapped = workflow(live(), False, "plain"), workflow(shadowed, False, "shadow")
            await rt.run(plain, {"calls": 5})  # warm up both paths
            await rt.run(wrapped, {"calls": 5})
            await shadowed.drain()
            for _ in range(repeat):
                t = time.perf_counter()
                await rt.run(plain, {"calls": calls})
                plain_t.append(time.perf_counter() - t)
                t = time.perf_counter()
                await rt.run(wrapped, {"calls": calls})
                shadow_t.append(time.perf_counter() - t)
                t = time.perf_counter()
                await shadowed.drain()
                drain_t.append(time.perf_counter() - t)
    p, s = statistics.median(plain_t), statistics.median(shadow_t)
    return {
        "plain_us_per_call": p / calls * 1e6,
        "shadowed_us_per_call": s / calls * 1e6,
        "overhead_us_per_call": (s - p) / calls * 1e6,
        "drain_after_run_ms": statistics.median(drain_t) * 1e3,
    }


async def reads(calls: int, runs: int, repeat: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteStore(Path(tmp) / "r.db")
        async with Runtime(store) as rt:
            big = await rt.run(workflow(live(), True, "agent"), {"calls": calls})
            small = workflow(live(), True, "small")
            for _ in range(runs):
                await rt.run(small, {"calls": 1})
            ml, kp = [], []
            for _ in range(repeat):
                t = time.perf_counter()
                log = await mind_log(store, big.run_id)
                ml.append(time.perf_counter() - t)
                t = time.perf_counter()
                report = await kpis(store, workflow="small")
                kp.append(time.perf_counter() - t)
            assert len(log.actions) == calls and report.overall.runs == runs
    return {
        "mind_log_ms": statistics.median(ml) * 1e3,
        "mind_log_entries": 2 * calls,
        "kpis_ms_per_run": statistics.median(kp) / runs * 1e3,
        "kpis_runs": runs,
    }


async def main(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {
        "shadow_rate_1.0": await shadow_overhead(args.calls, args.repeat, 1.0),
        "shadow_rate_0.1": await shadow_overhead(args.calls, args.repeat, 0.1),
        "reads": await reads(args.calls, args.runs, args.repeat),
        "meta": {
            "date": time.strftime("%Y-%m-%d %H:%M:%S"),
            "machine": platform.platform(),
            "python": platform.python_version(),
            "calls": args.calls,
            "runs": args.runs,
            "repeat": args.repeat,
            "store": "sqlite (default durability)",
            "load_average_1m": os.getloadavg()[0],
            "cpus": os.cpu_count(),
        },
    }
    return out


def table(res: dict[str, Any]) -> str:
    rows = []
    for rate in ("1.0", "0.1"):
        r = res[f"shadow_rate_{rate}"]
        rows.append(
            (f"live model call, plain (rate {rate} row)", f"{r['plain_us_per_call']:.0f} us")
        )
        rows.append(
            (f"live model call, shadowed at rate {rate}", f"{r['shadowed_us_per_call']:.0f} us")
        )
        rows.append(
            (f"  overhead on the live path, rate {rate}", f"{r['overhead_us_per_call']:+.0f} us")
        )
        rows.append(
            (
                f"  shadow comparisons left after the run, rate {rate}",
                f"{r['drain_after_run_ms']:.1f} ms",
            )
        )
    rd = res["reads"]
    rows.append(
        (f"mind_log of a run with {rd['mind_log_entries']} entries", f"{rd['mind_log_ms']:.1f} ms")
    )
    rows.append((f"kpis over {rd['kpis_runs']} runs, per run", f"{rd['kpis_ms_per_run']:.2f} ms"))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v:>10}" for k, v in rows)  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--no-save", action="store_true", help="print only")
    result = asyncio.run(main(parser.parse_args()))
    print(table(result))
    if not parser.parse_args().no_save:
        RESULTS.write_text(json.dumps(result, indent=2) + "\n")
        print(f"written to {RESULTS}")
