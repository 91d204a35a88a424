"""What the agent patterns cost and save, on SQLite, with scripted models (no model time):

* **ReWOO vs ReAct** on one task of ``--tools`` independent lookups and a sum (each lookup
  sleeps ``--tool-ms``, standing for a network call): model calls, tokens (estimated from the
  message text) and wall time per run, median of ``--repeat``. ReWOO runs the lookups in one
  parallel wave; ReAct one per turn.
* **fork-join**: a parent forking ``--children`` child runs (one trivial node each) and
  joining them all: time to join, per child.

    python bench/agents_bench.py [--tools 8] [--tool-ms 20] [--children 10,50] [--repeat 5]

Results: ``bench/results/agents.json``.
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

from tether import END, START, Graph, Runtime, Workflow
from tether.agents import (
    ForkJoinOptions,
    ReactOptions,
    RewooOptions,
    fork_join,
    react_agent,
    rewoo_agent,
    savings,
)
from tether.llm import ScriptedModel, tool_call
from tether.store.sqlite import SqliteStore
from tether.tools import ToolExecutor, tool

RESULTS = Path(__file__).parent / "results" / "agents.json"


def task_tools(tool_ms: float) -> ToolExecutor:
    @tool(scope="read", idempotent=True)
    async def lookup(i: int) -> int:
        """Look a number up."""
        await asyncio.sleep(tool_ms / 1000)
        return i * 10

    @tool(scope="read", idempotent=True)
    def total(values: list[int]) -> int:
        """Sum numbers."""
        return sum(values)

    return ToolExecutor([lookup, total])


def rewoo_wf(n: int, tools: ToolExecutor, name: str) -> Workflow:
    steps: list[dict[str, Any]] = [
        {"id": f"#E{i + 1}", "tool": "lookup", "args": {"i": i}} for i in range(n)
    ]
    steps.append(
        {"id": f"#E{n + 1}", "tool": "total", "args": {"values": [f"#E{i + 1}" for i in range(n)]}}
    )
    planner = ScriptedModel([{"steps": steps}], cycle=True)
    solver = ScriptedModel(["done"], cycle=True)
    return rewoo_agent(RewooOptions(planner=planner, solver=solver, tools=tools), name=name)


def react_wf(n: int, tools: ToolExecutor, name: str) -> Workflow:
    script: list[Any] = [tool_call("lookup", {"i": i}) for i in range(n)]
    script += [tool_call("total", {"values": [i * 10 for i in range(n)]}), "done"]
    model = ScriptedModel(script, cycle=True)
    return react_agent(ReactOptions(model=model, tools=tools, max_iterations=n + 3), name=name)


class Branch(TypedDict, total=False):
    i: int
    out: int


def branch_wf() -> Workflow:
    g = Graph(Branch, name="bench_branch")
    g.add_node("work", lambda s: {"out": s["i"] * 2})
    g.add_edge(START, "work").add_edge("work", END)
    return g.compile()


async def timed(rt: Runtime, wf: Workflow, data: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    t0 = time.perf_counter()
    res = await rt.run(wf, data)
    elapsed = time.perf_counter() - t0
    assert res.status.value == "COMPLETED", res
    return elapsed, res.state


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        async with Runtime(SqliteStore(os.path.join(tmp, "runs.db")), recover=False) as rt:
            tools = task_tools(args.tool_ms)
            rewoo, react = (
                rewoo_wf(args.tools, tools, "b_rewoo"),
                react_wf(args.tools, tools, "b_react"),
            )
            times: dict[str, list[float]] = {"rewoo": [], "react": []}
            states: dict[str, dict[str, Any]] = {}
            for _ in range(args.repeat):
                for name, wf in (("rewoo", rewoo), ("react", react)):
                    elapsed, state = await timed(rt, wf, {"task": "sum the lookups"})
                    times[name].append(elapsed)
                    states[name] = state
            saved = savings(states["rewoo"], states["react"])
            out["rewoo_vs_react"] = {
                "tools": args.tools + 1,
                "tool_ms": args.tool_ms,
                "react": {
                    "model_calls": saved.baseline_calls,
                    "tokens": saved.baseline_tokens,
                    "run_ms": 1000 * statistics.median(times["react"]),
                },
                "rewoo": {
                    "model_calls": saved.calls,
                    "tokens": saved.tokens_used,
                    "run_ms": 1000 * statistics.median(times["rewoo"]),
                    "waves": states["rewoo"]["waves"],
                },
                "saved_calls": saved.model_calls,
                "saved_tokens": saved.tokens,
                "saved_tokens_ratio": round(saved.tokens_ratio, 3),
            }
            branch = branch_wf()
            fj = fork_join(ForkJoinOptions(branch=branch), name="b_fork")
            rows = []
            for n in args.children:
                samples = []
                for _ in range(args.repeat):
                    elapsed, state = await timed(rt, fj, {"branches": [{"i": i} for i in range(n)]})
                    assert state["joined"] == "all" and len(state["results"]) == n
                    samples.append(elapsed)
                med = statistics.median(samples)
                rows.append({"children": n, "join_ms": 1000 * med, "per_child_ms": 1000 * med / n})
            out["fork_join"] = rows
    return out


def table(res: dict[str, Any]) -> str:
    rv = res["rewoo_vs_react"]
    lines = [
        f"ReWOO vs ReAct, {rv['tools']} tool calls ({rv['tool_ms']} ms each), SQLite, scripted",
        f"{'':8}{'model calls':>12}{'tokens':>10}{'run ms':>10}",
    ]
    for name in ("react", "rewoo"):
        r = rv[name]
        lines.append(f"{name:8}{r['model_calls']:>12}{r['tokens']:>10}{r['run_ms']:>10.1f}")
    lines.append(
        f"{'saved':8}{rv['saved_calls']:>12}{rv['saved_tokens']:>10}"
        f"   ({rv['saved_tokens_ratio']:.0%} of tokens)"
    )
    lines += [
        "",
        "fork-join of child runs, SQLite",
        f"{'children':>10}{'join ms':>10}{'per child':>11}",
    ]
    for row in res["fork_join"]:
        lines.append(f"{row['children']:>10}{row['join_ms']:>10.1f}{row['per_child_ms']:>11.2f}")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--tools", type=int, default=8)
    p.add_argument("--tool-ms", type=float, default=20.0)
    p.add_argument("--children", type=lambda s: [int(x) for x in s.split(",")], default=[10, 50])
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--no-save", action="store_true")
    args = p.parse_args()
    res = asyncio.run(bench(args))
    print(table(res))
    if not args.no_save:
        meta = {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "loadavg": os.getloadavg(),
            "args": {k: v for k, v in vars(args).items() if k != "no_save"},
        }
        RESULTS.write_text(json.dumps({"meta": meta, **res}, indent=2) + "\n")


if __name__ == "__main__":
    main()
