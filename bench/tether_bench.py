"""tether's side of the bench: the same workloads as ``bench/anchors/*``, same JSON shape.

Runs in the project venv (``.venv/bin/python bench/tether_bench.py``) and prints one JSON
object on stdout. Exits with status 2 and a message on stderr when tether's graph API
(``tether.Graph``, ``tether.Runtime``, ...) is not importable yet. Stores are given to
``Runtime`` by URL, as ``open_store`` takes them.

The workloads mirror the LangGraph anchor node for node:

* per_step_us: nodes ``a`` and ``b`` each add 1 to ``n``; ``b`` routes to END once n >= 1,000:
  1,000 steps per run; wall time of ``rt.run`` / 1,000; median of the repeats after one untimed
  20-step warm-up run. Stores: ``memory://``, ``sqlite:///<tmp>/cycle.db`` and
  ``postgresql://.../test?schema=bench_tether`` (schema dropped and re-created first).
* growth_200x1kb: one node appends a 1 KB message to ``msgs: Annotated[list[str], append]``
  and loops 200 times on SQLite. bytes: ``benchlib.sqlite_bytes`` after the runtime closed.
* concurrency_200x20_10ms: 200 ``rt.start`` at once on one SQLite runtime, each 20 steps of
  ``await asyncio.sleep(0.01)``; runs_per_s = 200 / wall time until every handle is done.
* resume_ms: ``ask -> done`` where ``ask`` calls ``interrupt()``; the parent runs it until it
  parks, then a fresh interpreter (imports and graph building done, untimed) times: open the
  store (``Runtime(url, workflows=[wf])`` entered) and ``rt.resume(run_id, "yes")`` to
  completion.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypedDict

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchlib as bl

try:
    from tether import END, START, Graph, Runtime, append, interrupt
except ImportError as exc:  # the graph API is being written; run.py reports tether as missing
    sys.stderr.write(f"tether graph API not available yet: {type(exc).__name__}: {exc}\n")
    raise SystemExit(2) from None

PG_SCHEMA = "bench_tether"
MAX_STEPS = 5000


class CycleState(TypedDict):
    n: int


class GrowState(TypedDict):
    msgs: Annotated[list[str], append]


class AskState(TypedDict):
    answer: str
    done: bool


# -- graphs ------------------------------------------------------------------------------------
def _inc(state: CycleState) -> dict[str, int]:
    return {"n": state["n"] + 1}


def cycle_graph(limit: int) -> Any:
    g = Graph(CycleState, name="cycle")
    g.add_node("a", _inc)
    g.add_node("b", _inc)
    g.add_edge(START, "a")
    g.add_edge("a", "b")
    g.add_conditional_edges("b", lambda s: END if s["n"] >= limit else "a")
    return g.compile()


def grow_graph(stamps: list[float]) -> Any:
    def add(state: GrowState) -> dict[str, list[str]]:
        stamps.append(time.perf_counter())
        return {"msgs": [bl.payload(len(state["msgs"]))]}

    g = Graph(GrowState, name="grow")
    g.add_node("add", add)
    g.add_edge(START, "add")
    g.add_conditional_edges("add", lambda s: END if len(s["msgs"]) >= bl.GROWTH_STEPS else "add")
    return g.compile()


def conc_graph() -> Any:
    async def tick(state: CycleState) -> dict[str, int]:
        await asyncio.sleep(bl.CONC_SLEEP_S)
        return {"n": state["n"] + 1}

    g = Graph(CycleState, name="ticker")
    g.add_node("tick", tick)
    g.add_edge(START, "tick")
    g.add_conditional_edges("tick", lambda s: END if s["n"] >= bl.CONC_STEPS else "tick")
    return g.compile()


def ask_graph() -> Any:
    def ask(state: AskState) -> dict[str, str]:
        return {"answer": str(interrupt({"question": "ok?"}))}

    def done(state: AskState) -> dict[str, bool]:
        return {"done": True}

    g = Graph(AskState, name="ask")
    g.add_node("ask", ask)
    g.add_node("done", done)
    g.add_edge(START, "ask")
    g.add_edge("ask", "done")
    g.add_edge("done", END)
    return g.compile()


def _check(res: Any, status: str = "COMPLETED") -> Any:
    if str(res.status) != status:
        raise RuntimeError(f"run {res.run_id} ended {res.status}, expected {status}")
    return res


# -- per_step_us -----------------------------------------------------------------------------
def pg_url() -> str:
    return bl.with_query(bl.pg_base_url(), schema=PG_SCHEMA)


async def per_step(url: str, repeats: int) -> float:
    wf = cycle_graph(bl.CYCLE_STEPS)
    async with Runtime(url, workflows=[wf], max_steps=MAX_STEPS) as rt:
        _check(await rt.run(wf, {"n": bl.CYCLE_STEPS - 20}))  # warm-up, 20 steps
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            res = _check(await rt.run(wf, {"n": 0}))
            times.append((time.perf_counter() - t0) / bl.CYCLE_STEPS * 1e6)
            assert res.state["n"] == bl.CYCLE_STEPS, res.state
    return bl.median(times)


def per_step_postgres(repeats: int, durability: str = "process") -> float:
    """tether's default durability survives any crash of its own processes (the SQLite
    default's equivalent: ``synchronous_commit=off``); ``power-loss`` flushes every commit as
    the anchors' Postgres setups do."""
    base = bl.pg_base_url()
    bl.reset_pg_schema(base, PG_SCHEMA)
    try:
        return asyncio.run(per_step(bl.with_query(pg_url(), durability=durability), repeats))
    finally:
        bl.drop_pg_schema(base, PG_SCHEMA)


# -- growth_200x1kb --------------------------------------------------------------------------
async def _grow_once(path: Path) -> list[float]:
    stamps: list[float] = []
    wf = grow_graph(stamps)
    async with Runtime(f"sqlite:///{path}", workflows=[wf], max_steps=MAX_STEPS) as rt:
        res = _check(await rt.run(wf, {"msgs": []}))
        stamps.append(time.perf_counter())
        assert len(res.state["msgs"]) == bl.GROWTH_STEPS
    return stamps


def growth(tmp: Path, repeats: int) -> tuple[int, float, float]:
    sizes, stamp_lists = [], []
    for r in range(repeats):
        path = tmp / f"growth-{r}.db"
        stamp_lists.append(asyncio.run(_grow_once(path)))
        sizes.append(bl.sqlite_bytes(path))
        bl.remove_sqlite(path)
    return (int(bl.median(sizes)), *bl.growth_ratios(stamp_lists))


async def _empty(path: Path) -> None:
    async with Runtime(f"sqlite:///{path}", max_steps=MAX_STEPS):
        pass


def empty_bytes(tmp: Path) -> int:
    path = tmp / "empty.db"
    asyncio.run(_empty(path))
    size = bl.sqlite_bytes(path)
    bl.remove_sqlite(path)
    return size


# -- concurrency_200x20_10ms -----------------------------------------------------------------
async def concurrency(tmp: Path, repeats: int) -> float:
    wf = conc_graph()
    rates = []
    for r in range(repeats):
        path = tmp / f"conc-{r}.db"
        async with Runtime(f"sqlite:///{path}", workflows=[wf], max_steps=MAX_STEPS) as rt:
            t0 = time.perf_counter()
            handles = await asyncio.gather(*(rt.start(wf, {"n": 0}) for _ in range(bl.CONC_RUNS)))
            results = await asyncio.gather(*(h.wait() for h in handles))
            rates.append(bl.CONC_RUNS / (time.perf_counter() - t0))
            for res in results:
                assert _check(res).state["n"] == bl.CONC_STEPS
        bl.remove_sqlite(path)
    return bl.median(rates)


async def asyncio_ceiling() -> float:
    """The same 200 x 20 x 10 ms shape with no framework at all: bare ``asyncio.sleep``. No
    system can beat it; it shows how much of the gap to a target is the machine's timers."""

    async def one() -> None:
        for _ in range(bl.CONC_STEPS):
            await asyncio.sleep(0.01)

    t0 = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(bl.CONC_RUNS)))
    return bl.CONC_RUNS / (time.perf_counter() - t0)


# -- resume_ms -------------------------------------------------------------------------------
async def _resume_child(db: str, run_id: str) -> float:
    wf = ask_graph()  # untimed: building the workflow is not part of resuming it
    t0 = time.perf_counter()
    async with Runtime(f"sqlite:///{db}", workflows=[wf], max_steps=MAX_STEPS) as rt:
        res = _check(await rt.resume(run_id, "yes"))
        dt = time.perf_counter() - t0
    assert res.state["answer"] == "yes" and res.state["done"], res.state
    return dt * 1e3


async def _park(path: Path, n: int) -> list[str]:
    wf = ask_graph()
    async with Runtime(f"sqlite:///{path}", workflows=[wf], max_steps=MAX_STEPS) as rt:
        runs = [
            _check(await rt.run(wf, {"answer": "", "done": False}), "ESCALATED") for _ in range(n)
        ]
    return [r.run_id for r in runs]


def resume(tmp: Path, repeats: int) -> float:
    path = tmp / "resume.db"
    run_ids = asyncio.run(_park(path, repeats))
    times = []
    for run_id in run_ids:
        proc = subprocess.run(
            [sys.executable, __file__, "--resume-child", str(path), run_id],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            tail = (proc.stderr.strip().splitlines() or ["?"])[-1]
            raise RuntimeError(f"resume child exited {proc.returncode}: {tail}")
        times.append(json.loads(proc.stdout.strip().splitlines()[-1])["ms"])
    bl.remove_sqlite(path)
    return bl.median(times)


# -- driver ------------------------------------------------------------------------------------
def _try(notes: list[str], measure: str, fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except Exception as exc:  # a measure that fails becomes null + a note, never a number
        notes.append(bl.error_note(measure, exc))
        return None


def _arun(coro_fn: Callable[[], Awaitable[Any]]) -> Callable[[], Any]:
    return lambda: asyncio.run(coro_fn())  # type: ignore[arg-type]


def run_all(repeats: int) -> dict[str, Any]:
    notes: list[str] = []
    extras: dict[str, Any] = {}
    r = bl.rnd
    with tempfile.TemporaryDirectory(prefix="bench-tether-") as d:
        tmp = Path(d)
        memory = _try(notes, "per_step memory", _arun(lambda: per_step("memory://", repeats)))
        sqlite = _try(
            notes,
            "per_step sqlite",
            _arun(lambda: per_step(f"sqlite:///{tmp / 'cycle.db'}", repeats)),
        )
        postgres = _try(notes, "per_step postgres", lambda: per_step_postgres(repeats))
        extras["per_step_us_postgres_power_loss"] = r(
            _try(
                notes,
                "per_step postgres power-loss",
                lambda: per_step_postgres(repeats, "power-loss"),
            )
        )
        extras["per_step_us_sqlite_power_loss"] = r(
            _try(
                notes,
                "per_step sqlite power-loss",
                _arun(
                    lambda: per_step(
                        f"sqlite:///{tmp / 'cycle-full.db'}?durability=power-loss", repeats
                    )
                ),
            )
        )
        grown = _try(notes, "growth_200x1kb", lambda: growth(tmp, repeats))
        extras["growth_step_time_ratio_median"] = r(grown[2], 3) if grown else None
        extras["growth_empty_db_bytes"] = _try(notes, "empty db", lambda: empty_bytes(tmp))
        conc = _try(notes, "concurrency", _arun(lambda: concurrency(tmp, repeats)))
        extras["concurrency_pure_asyncio_ceiling_runs_per_s"] = r(
            _try(notes, "asyncio ceiling", _arun(asyncio_ceiling)), 1
        )
        resumed = _try(notes, "resume_ms", lambda: resume(tmp, max(repeats, 3)))
    return {
        "system": "tether",
        "versions": {"tether": importlib.metadata.version("tether")},
        "per_step_us": {"memory": r(memory), "sqlite": r(sqlite), "postgres": r(postgres)},
        "growth_200x1kb": {
            "bytes": grown[0] if grown else None,
            "step_time_ratio_200_vs_10": r(grown[1], 3) if grown else None,
        },
        "concurrency_200x20_10ms": {"runs_per_s": r(conc, 1)},
        "resume_ms": r(resumed, 3),
        "extras": extras,
        "notes": notes,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--resume-child", nargs=2, metavar=("DB", "RUN_ID"))
    args = ap.parse_args()
    if args.resume_child:
        bl.emit({"ms": asyncio.run(_resume_child(*args.resume_child))})
    else:
        bl.emit(run_all(args.repeats))


if __name__ == "__main__":
    main()
