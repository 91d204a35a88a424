"""LangGraph anchor: the bench workloads on LangGraph 1.2 (runs inside ``bench/.venv-anchors``).

Prints one JSON object on stdout. Choices, so that the comparison with tether stays honest:

* A "step" is one node execution, which in LangGraph is one super-step (one checkpoint).
* Durable runs use ``durability="sync"``: the checkpoint of a step is written before the next
  step starts, which is tether's guarantee. LangGraph's default (``"async"``, the write overlaps
  the next step) is reported in ``extras`` as ``*_durability_async``.
* SQLite: the sync ``SqliteSaver`` on a file (its ``setup()`` turns WAL on; ``synchronous`` is
  SQLite's default, FULL, set explicitly). ``extras.sqlite_sync_normal_us`` is the same with
  ``PRAGMA synchronous=NORMAL`` on the saver's connection (tether's default: the matched row).
  ``AsyncSqliteSaver`` is used where the workload is asyncio-concurrent (concurrency) and as
  ``extras.sqlite_async_saver``.
* Postgres: the sync ``PostgresSaver`` (one connection, autocommit) in a dedicated schema
  ``bench_langgraph`` of the bench database, dropped and re-created first, dropped at the end,
  with the server's default ``synchronous_commit=on``. ``extras.postgres_sync_commit_off_us``
  is the same on a connection with ``synchronous_commit=off`` (``options`` in the URL;
  tether's default).
* per_step_us: nodes ``a`` and ``b`` each add 1 to ``n``; ``b`` routes to END once n >= 1000:
  1,000 steps per run; total wall time of ``invoke`` / 1,000; median of the repeats, after one
  untimed warm-up run per variant.
* growth_200x1kb: one node appends a 1 KB message to ``msgs: Annotated[list, operator.add]``
  and loops 200 times (SqliteSaver, durability sync). bytes: see ``benchlib.sqlite_bytes``.
  Step time: timestamps taken at each node entry plus one after ``invoke`` returns.
* concurrency_200x20_10ms: 200 ``ainvoke`` at once (one ``AsyncSqliteSaver``, distinct
  thread ids), each 20 steps of ``await asyncio.sleep(0.01)``; runs_per_s = 200 / wall time.
* resume_ms: a graph ``ask -> done`` where ``ask`` calls ``interrupt()``; the parent runs it
  until it interrupts, then a fresh interpreter (imports and graph building done, untimed)
  times: open the SQLite connection, build the SqliteSaver, ``compile(checkpointer=...)``
  (LangGraph binds the checkpointer at compile time) and ``invoke(Command(resume=...))`` to
  completion. ``extras.resume_compile_ms`` is the compile part alone.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import operator
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypedDict

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import benchlib as bl
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, interrupt

PG_SCHEMA = "bench_langgraph"


# -- graphs ------------------------------------------------------------------------------------
class CycleState(TypedDict):
    n: int


class GrowState(TypedDict):
    msgs: Annotated[list[str], operator.add]


class AskState(TypedDict):
    answer: str
    done: bool


def _inc(state: CycleState) -> dict[str, int]:
    return {"n": state["n"] + 1}


def cycle_builder(limit: int) -> StateGraph:
    g = StateGraph(CycleState)
    g.add_node("a", _inc)
    g.add_node("b", _inc)
    g.add_edge(START, "a")
    g.add_edge("a", "b")
    g.add_conditional_edges("b", lambda s: END if s["n"] >= limit else "a", ["a", END])
    return g


def grow_builder(stamps: list[float]) -> StateGraph:
    def add(state: GrowState) -> dict[str, list[str]]:
        stamps.append(time.perf_counter())
        return {"msgs": [bl.payload(len(state["msgs"]))]}

    g = StateGraph(GrowState)
    g.add_node("add", add)
    g.add_edge(START, "add")
    g.add_conditional_edges(
        "add", lambda s: END if len(s["msgs"]) >= bl.GROWTH_STEPS else "add", ["add", END]
    )
    return g


def conc_builder() -> StateGraph:
    async def tick(state: CycleState) -> dict[str, int]:
        await asyncio.sleep(bl.CONC_SLEEP_S)
        return {"n": state["n"] + 1}

    g = StateGraph(CycleState)
    g.add_node("tick", tick)
    g.add_edge(START, "tick")
    g.add_conditional_edges(
        "tick", lambda s: END if s["n"] >= bl.CONC_STEPS else "tick", ["tick", END]
    )
    return g


def ask_builder() -> StateGraph:
    def ask(state: AskState) -> dict[str, str]:
        return {"answer": str(interrupt({"question": "ok?"}))}

    def done(state: AskState) -> dict[str, bool]:
        return {"done": True}

    g = StateGraph(AskState)
    g.add_node("ask", ask)
    g.add_node("done", done)
    g.add_edge(START, "ask")
    g.add_edge("ask", "done")
    g.add_edge("done", END)
    return g


def cfg(thread: str, limit: int = bl.CYCLE_STEPS + 10) -> Any:
    return {"configurable": {"thread_id": thread}, "recursion_limit": limit}


# -- per_step_us -----------------------------------------------------------------------------
def _timed_cycle(graph: Any, thread: str, **kw: Any) -> float:
    """µs per step of one 1,000-step run."""
    t0 = time.perf_counter()
    out = graph.invoke({"n": 0}, cfg(thread), **kw)
    dt = time.perf_counter() - t0
    assert out["n"] == bl.CYCLE_STEPS, out
    return dt / bl.CYCLE_STEPS * 1e6


def _median_cycle(graph: Any, repeats: int, tag: str, **kw: Any) -> float:
    graph.invoke({"n": bl.CYCLE_STEPS - 20}, cfg(f"{tag}-warm"), **kw)  # warm-up, 20 steps
    return bl.median([_timed_cycle(graph, f"{tag}-{r}", **kw) for r in range(repeats)])


def per_step_sqlite(tmp: Path, repeats: int, *, synchronous: str = "FULL", **kw: Any) -> float:
    path = tmp / f"cycle-{time.monotonic_ns()}.db"
    conn = sqlite3.connect(path, check_same_thread=False)
    try:
        saver = SqliteSaver(conn)
        saver.setup()
        conn.execute(f"PRAGMA synchronous={synchronous}")
        (level,) = conn.execute("PRAGMA synchronous").fetchone()
        assert level == {"NORMAL": 1, "FULL": 2}[synchronous], level
        graph = cycle_builder(bl.CYCLE_STEPS).compile(checkpointer=saver)
        return _median_cycle(graph, repeats, "sq", **kw)
    finally:
        conn.close()
        bl.remove_sqlite(path)


async def per_step_sqlite_async(tmp: Path, repeats: int) -> float:
    path = tmp / f"cycle-async-{time.monotonic_ns()}.db"
    try:
        async with AsyncSqliteSaver.from_conn_string(str(path)) as saver:
            graph = cycle_builder(bl.CYCLE_STEPS).compile(checkpointer=saver)
            await graph.ainvoke({"n": bl.CYCLE_STEPS - 20}, cfg("warm"), durability="sync")
            times = []
            for r in range(repeats):
                t0 = time.perf_counter()
                await graph.ainvoke({"n": 0}, cfg(f"as-{r}"), durability="sync")
                times.append((time.perf_counter() - t0) / bl.CYCLE_STEPS * 1e6)
            return bl.median(times)
    finally:
        bl.remove_sqlite(path)


def per_step_postgres(repeats: int, *, sync_commit: str = "on", **kw: Any) -> float:
    from langgraph.checkpoint.postgres import PostgresSaver

    base = bl.pg_base_url()
    bl.reset_pg_schema(base, PG_SCHEMA)
    opts = f"-csearch_path={PG_SCHEMA} -csynchronous_commit={sync_commit}"
    url = bl.with_query(base, options=opts)
    try:
        with PostgresSaver.from_conn_string(url) as saver:
            saver.setup()
            row = saver.conn.execute("SHOW synchronous_commit").fetchone()  # a dict row
            assert row is not None and list(dict(row).values()) == [sync_commit], row
            graph = cycle_builder(bl.CYCLE_STEPS).compile(checkpointer=saver)
            return _median_cycle(graph, repeats, "pg", **kw)
    finally:
        bl.drop_pg_schema(base, PG_SCHEMA)


# -- growth_200x1kb --------------------------------------------------------------------------
def growth(tmp: Path, repeats: int) -> tuple[int, float, float]:
    sizes: list[int] = []
    stamp_lists: list[list[float]] = []
    for r in range(repeats):
        path = tmp / f"growth-{r}.db"
        stamps: list[float] = []
        conn = sqlite3.connect(path, check_same_thread=False)
        try:
            saver = SqliteSaver(conn)
            saver.setup()
            graph = grow_builder(stamps).compile(checkpointer=saver)
            out = graph.invoke({"msgs": []}, cfg("g", bl.GROWTH_STEPS + 10), durability="sync")
            stamps.append(time.perf_counter())
            assert len(out["msgs"]) == bl.GROWTH_STEPS
        finally:
            conn.close()
        sizes.append(bl.sqlite_bytes(path))
        stamp_lists.append(stamps)
        bl.remove_sqlite(path)
    return (int(bl.median(sizes)), *bl.growth_ratios(stamp_lists))


def empty_bytes(tmp: Path) -> int:
    """Bytes of a SQLite checkpoint database holding the schema and no checkpoint."""
    path = tmp / "empty.db"
    conn = sqlite3.connect(path, check_same_thread=False)
    SqliteSaver(conn).setup()
    conn.close()
    size = bl.sqlite_bytes(path)
    bl.remove_sqlite(path)
    return size


# -- concurrency_200x20_10ms -----------------------------------------------------------------
async def concurrency(tmp: Path, repeats: int, durability: str = "sync") -> float:
    rates: list[float] = []
    for r in range(repeats):
        path = tmp / f"conc-{r}.db"
        try:
            async with AsyncSqliteSaver.from_conn_string(str(path)) as saver:
                graph = conc_builder().compile(checkpointer=saver)
                t0 = time.perf_counter()
                outs = await asyncio.gather(
                    *(
                        graph.ainvoke({"n": 0}, cfg(f"r{i}", 50), durability=durability)
                        for i in range(bl.CONC_RUNS)
                    )
                )
                rates.append(bl.CONC_RUNS / (time.perf_counter() - t0))
                assert all(o["n"] == bl.CONC_STEPS for o in outs)
        finally:
            bl.remove_sqlite(path)
    return bl.median(rates)


# -- resume_ms -------------------------------------------------------------------------------
def resume_child(db: str, thread: str) -> None:
    """Runs in a fresh interpreter: time opening the checkpointer and resuming to completion."""
    builder = ask_builder()
    builder.compile()  # untimed warm-up of LangGraph's lazy machinery
    t0 = time.perf_counter()
    conn = sqlite3.connect(db, check_same_thread=False)
    saver = SqliteSaver(conn)
    tc = time.perf_counter()
    graph = builder.compile(checkpointer=saver)
    compile_s = time.perf_counter() - tc
    out = graph.invoke(Command(resume="yes"), cfg(thread), durability="sync")
    total_s = time.perf_counter() - t0
    conn.close()
    assert out == {"answer": "yes", "done": True}, out
    bl.emit({"ms": total_s * 1e3, "compile_ms": compile_s * 1e3})


def resume(tmp: Path, repeats: int) -> tuple[float, float]:
    path = tmp / "resume.db"
    conn = sqlite3.connect(path, check_same_thread=False)
    saver = SqliteSaver(conn)
    saver.setup()
    graph = ask_builder().compile(checkpointer=saver)
    threads = [f"t{r}" for r in range(repeats)]
    for t in threads:
        out = graph.invoke({"answer": "", "done": False}, cfg(t), durability="sync")
        assert "__interrupt__" in out, out
    conn.close()
    totals, compiles = [], []
    for t in threads:
        proc = subprocess.run(
            [sys.executable, __file__, "--resume-child", str(path), t],
            capture_output=True,
            text=True,
            check=True,
        )
        child = bl.json.loads(proc.stdout.strip().splitlines()[-1])
        totals.append(child["ms"])
        compiles.append(child["compile_ms"])
    bl.remove_sqlite(path)
    return bl.median(totals), bl.median(compiles)


# -- driver ------------------------------------------------------------------------------------
def _try(notes: list[str], measure: str, fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except Exception as exc:  # a measure that fails becomes null + a note, never a number
        notes.append(bl.error_note(measure, exc))
        return None


def run_all(repeats: int) -> dict[str, Any]:
    notes: list[str] = []
    extras: dict[str, Any] = {}
    r = bl.rnd
    with tempfile.TemporaryDirectory(prefix="bench-lg-") as d:
        tmp = Path(d)
        mem_graph = cycle_builder(bl.CYCLE_STEPS).compile()
        memory = _try(notes, "per_step memory", lambda: _median_cycle(mem_graph, repeats, "m"))
        saver_graph = cycle_builder(bl.CYCLE_STEPS).compile(checkpointer=InMemorySaver())
        extras["memory_inmemorysaver_us"] = r(
            _try(notes, "InMemorySaver", lambda: _median_cycle(saver_graph, repeats, "ims"))
        )
        sqlite = _try(
            notes, "per_step sqlite", lambda: per_step_sqlite(tmp, repeats, durability="sync")
        )
        extras["sqlite_durability_async_us"] = r(
            _try(notes, "sqlite async durability", lambda: per_step_sqlite(tmp, repeats))
        )
        extras["sqlite_sync_normal_us"] = r(
            _try(
                notes,
                "sqlite synchronous=NORMAL",
                lambda: per_step_sqlite(tmp, repeats, synchronous="NORMAL", durability="sync"),
            )
        )
        extras["sqlite_async_saver_us"] = r(
            _try(
                notes, "AsyncSqliteSaver", lambda: asyncio.run(per_step_sqlite_async(tmp, repeats))
            )
        )
        postgres = _try(
            notes, "per_step postgres", lambda: per_step_postgres(repeats, durability="sync")
        )
        extras["postgres_sync_commit_off_us"] = r(
            _try(
                notes,
                "postgres synchronous_commit=off",
                lambda: per_step_postgres(repeats, sync_commit="off", durability="sync"),
            )
        )
        extras["postgres_durability_async_us"] = r(
            _try(notes, "postgres async durability", lambda: per_step_postgres(repeats))
        )
        grown = _try(notes, "growth_200x1kb", lambda: growth(tmp, repeats))
        extras["growth_step_time_ratio_median"] = r(grown[2], 3) if grown else None
        extras["growth_empty_db_bytes"] = _try(notes, "empty db", lambda: empty_bytes(tmp))
        conc = _try(notes, "concurrency", lambda: asyncio.run(concurrency(tmp, repeats)))
        extras["concurrency_durability_async_runs_per_s"] = r(
            _try(
                notes, "concurrency async", lambda: asyncio.run(concurrency(tmp, repeats, "async"))
            )
        )
        resumed = _try(notes, "resume_ms", lambda: resume(tmp, max(repeats, 3)))
    extras["resume_compile_ms"] = r(resumed[1], 3) if resumed else None
    if extras["memory_inmemorysaver_us"] is not None:
        notes.append(
            "per_step memory is without a checkpointer; with InMemorySaver: "
            f"{extras['memory_inmemorysaver_us']:.0f} µs"
        )
    return {
        "system": "langgraph",
        "versions": {
            d: importlib.metadata.version(d)
            for d in (
                "langgraph",
                "langgraph-checkpoint",
                "langgraph-checkpoint-sqlite",
                "langgraph-checkpoint-postgres",
                "psycopg",
                "aiosqlite",
            )
        },
        "per_step_us": {"memory": r(memory), "sqlite": r(sqlite), "postgres": r(postgres)},
        "growth_200x1kb": {
            "bytes": grown[0] if grown else None,
            "step_time_ratio_200_vs_10": r(grown[1], 3) if grown else None,
        },
        "concurrency_200x20_10ms": {"runs_per_s": r(conc, 1)},
        "resume_ms": r(resumed[0], 3) if resumed else None,
        "extras": extras,
        "notes": notes,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--resume-child", nargs=2, metavar=("DB", "THREAD"))
    args = ap.parse_args()
    if args.resume_child:
        resume_child(*args.resume_child)
    else:
        bl.emit(run_all(args.repeats))


if __name__ == "__main__":
    main()
