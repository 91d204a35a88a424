"""Overhead of governance per live model call and per live tool call, on SQLite and PostgreSQL.

Each row runs one workflow whose single node makes ``--calls`` journaled calls of one kind (a
``FunctionModel`` answering at once, or a trivial tool), ungoverned and with the row's
``Governance``, the two runs taking turns ``--repeat`` times; the overhead per call is the
difference of the two medians divided by the number of calls, in wall-clock time and in CPU
time (``time.process_time``: this process's threads, what other programs on a busy machine
disturb least). Target: <= 150 us per call on SQLite. A model call's budget and a tenant
quota are one ledger write each on average: a reservation carries the previous call's settle
(``tether.governance.budget_pending``); the run's end writes the last one.

    python bench/governance_bench.py [--calls 200] [--repeat 7] [--pg postgresql://...]

Rows are ``ROWS`` entries ``(name, kind, make)``: ``make()`` returns the ``Governance`` of the
governed side. Add a row for another part (a policy set, an audit sink) by appending to it.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypedDict

from tether import END, START, Graph, RunContext, RunStatus, Runtime
from tether.core.governor import GovernedCall
from tether.governance import (
    AuditSink,
    Budget,
    Governance,
    GovernancePart,
    PolicySet,
    Quota,
    RunScope,
    StoreAuditLog,
)
from tether.llm.fakes import FunctionModel
from tether.store.protocol import RunStore
from tether.store.url import open_store
from tether.tools import ToolExecutor, tool


class S(TypedDict, total=False):
    calls: int


model = FunctionModel(lambda request: "ok", name="bench")


@tool(scope="read", idempotent=True)
def noop(i: int) -> int:
    """Do nothing."""
    return i


tools = ToolExecutor([noop])


async def model_node(state: S, ctx: RunContext) -> dict[str, Any]:
    for i in range(state["calls"]):
        await model.chat(f"call {i}", max_tokens=16)
    return {}


async def tool_node(state: S, ctx: RunContext) -> dict[str, Any]:
    for i in range(state["calls"]):
        await tools.call("noop", {"i": i}, ctx=ctx)
    return {}


def workflow(kind: str, governance: Governance | None, name: str) -> Any:
    g = Graph(S, name=name)
    g.add_node("n", model_node if kind == "model" else tool_node)
    g.add_edge(START, "n").add_edge("n", END)
    return g.compile(governance=governance)


QUIET = AuditSink()  # decisions are rare here (no trips): the audit log is not what is measured


def limited() -> Budget:
    """A budget as teams set one: limits on what the calls use, never reached here. (A budget
    with no limit at all, ``Budget()``, only counts: its ledger is written without being read
    back, about 115,000 CPU instructions a call less on SQLite; the rows measure the common
    case.)"""
    return Budget(tokens=1e12, cost=1e9, model_calls=1e9, tool_calls=1e9, steps=1e9)


ROWS: list[tuple[str, str, Callable[[], Governance]]] = [
    ("budget (settle folded)", "model", lambda: Governance(budget=limited(), audit=QUIET)),
    ("budget (one charge)", "tool", lambda: Governance(budget=limited(), audit=QUIET)),
    (
        "budget + tenant quota",
        "model",
        lambda: Governance(budget=limited(), parts=[Quota(tokens=1e12)], audit=QUIET),
    ),
]


class AuditEach(GovernancePart):
    """Records one decision per call in the default hash-chained audit log (the store's)."""

    async def before_call(self, scope: RunScope, call: GovernedCall) -> None:
        await scope.audit("policy_decision", {"call": call.name, "verdict": "allow"})


ROWS.append(("audit: 1 record per call", "tool", lambda: Governance(parts=[AuditEach()])))
ROWS.append(
    (  # a policy decision on each tool call, audited, then the budget's charge
        "policy + audit + budget",
        "tool",
        lambda: Governance(policies=PolicySet([]), budget=limited()),
    )
)
ROWS.append(
    (
        "policy+audit+budget+quota",
        "tool",
        lambda: Governance(policies=PolicySet([]), budget=limited(), parts=[Quota(tokens=1e12)]),
    )
)


async def timed(rt: Runtime, wf: Any, calls: int) -> tuple[float, float]:
    """Wall-clock and CPU seconds of one run."""
    t0, c0 = time.perf_counter(), time.process_time()
    res = await rt.run(wf, {"calls": calls})
    assert res.status is RunStatus.COMPLETED, res
    return time.perf_counter() - t0, time.process_time() - c0


Row = tuple[str, str, float, float, float]
"""Name, call kind, ungoverned wall us a call, overhead wall us a call, overhead CPU us."""


async def measure(store: RunStore, calls: int, repeat: int) -> list[Row]:
    out = []
    async with Runtime(store) as rt:
        for name, kind, make in ROWS:
            tag = uuid.uuid4().hex[:6]
            plain = workflow(kind, None, f"plain_{kind}_{tag}")
            governed = workflow(kind, make(), f"gov_{kind}_{tag}")
            await timed(rt, plain, calls)  # warm up both
            await timed(rt, governed, calls)
            p: list[tuple[float, float]] = []
            g: list[tuple[float, float]] = []
            for _ in range(repeat):  # in turns: a busy spell of the machine hits both
                p.append(await timed(rt, plain, calls))
                g.append(await timed(rt, governed, calls))
            pw, gw = (statistics.median(t[0] for t in runs) for runs in (p, g))
            pc, gc = (statistics.median(t[1] for t in runs) for runs in (p, g))
            us = 1e6 / calls
            out.append((name, kind, pw * us, (gw - pw) * us, (gc - pc) * us))
    return out


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/test")
    args = ap.parse_args()
    backends: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        backends.append(("sqlite", f"sqlite:///{Path(tmp) / 'bench.db'}"))
        if args.pg:
            sep = "&" if "?" in args.pg else "?"
            backends.append(("postgres", f"{args.pg}{sep}schema=gb_{uuid.uuid4().hex[:8]}"))
        print(
            f"{'backend':<9} {'row':<28} {'call':<6} {'ungoverned us':>14} {'overhead us':>12} "
            f"{'cpu us':>7}"
        )
        for backend, url in backends:
            store = open_store(url)
            try:
                await store.setup()
            except Exception as exc:  # PostgreSQL not reachable: say so, keep the table
                print(f"{backend:<9} skipped: {exc}")
                continue
            try:
                # before measure(): its Runtime closes the store
                per_record = await audit_append_us(store, args.calls * args.repeat)
                for name, kind, base, extra, cpu in await measure(store, args.calls, args.repeat):
                    line = f"{backend:<9} {name:<28} {kind:<6} {base:>14.0f} {extra:>12.0f}"
                    print(f"{line} {cpu:>7.0f}")
                row = f"{backend:<9} {'audit append (direct)':<28} {'-':<6} {'-':>14}"
                print(f"{row} {per_record[0]:>12.0f} {per_record[1]:>7.0f}")
            finally:
                if backend == "postgres":
                    await _drop_schema(store)
                await store.close()


async def audit_append_us(store: RunStore, n: int) -> tuple[float, float]:
    """Wall-clock and CPU microseconds per ``StoreAuditLog.append`` (canonical JSON, SHA-256,
    one INSERT)."""
    log, data = StoreAuditLog(store), {"call": "noop", "verdict": "allow", "args": {"i": 1}}
    await log.append("warm_up", data, tenant="bench", ts=time.time())
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(n):
        await log.append("policy_decision", data, tenant="bench", run_id="r", ts=time.time())
    return (time.perf_counter() - t0) / n * 1e6, (time.process_time() - c0) / n * 1e6


async def _drop_schema(store: Any) -> None:
    schema = getattr(store, "schema", None)
    if schema:
        import psycopg

        with psycopg.connect(store.dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


if __name__ == "__main__":
    asyncio.run(main())
