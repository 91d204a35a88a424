"""tether's side of the queue bench: worker processes serving a queue on PostgreSQL (and SQLite).

    .venv/bin/python bench/queue_bench.py [--quick] [--only throughput,latency,wakeup,faults,chaos]

Prints one JSON object on stdout (the harness, ``bench/run.py --queue``, reads the last line).
The workers are ``bench/queue_bench_app.py`` processes: a ``tether.Runtime(recover=True)``
each, serving the bench's workflows; the driver (this process) submits with
``Runtime.submit`` (PLANNED, unowned: any worker claims it) and reads the store's ``runs``
table directly to see runs complete. Timestamps are ``time.time()`` on one machine.

* throughput_{1,2,4}w: 2,000 trivial 1-step runs (``qb_one``; 400 with ``--quick``) queued,
  then W workers started: ``runs_per_s`` = runs / (last completion seen - first worker ready).
  Then 2,000 more submitted by the driver (16 submits in flight) while the same workers serve:
  ``submit_to_complete_runs_per_s`` = runs / (last completion - first submit), bounded by the
  driver's submit rate (``submit_runs_per_s``). Postgres, schema ``bench_queue_tether``.
* latency: with 4 idle workers, 100 runs (30 quick) submitted one at a time 30 ms apart;
  enqueue→start = the node's start stamp - the time just before ``submit``. p50/p99.
* wakeup: submit → first step, and resume → continues (``qb_ask`` parks on ``interrupt()``,
  ``resume(..., execute=False)`` answers it, ``after`` stamps), one worker; on Postgres and
  SQLite, with the worker in another process (``process``) and in the submitting process
  (``embedded``: the same ``Runtime(recover=True)`` submits and serves).
* faults and chaos: ``bench/queue_bench_faults.py`` (imported from here).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import os
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchlib as bl
import queue_benchlib as ql
from queue_bench_app import WORKFLOWS, ask, one

from tether import Runtime

BENCH = Path(__file__).resolve().parent
APP = BENCH / "queue_bench_app.py"
PG_SCHEMA = "bench_queue_tether"
SUBMITS_IN_FLIGHT = 16


# -- stores ------------------------------------------------------------------------------------
class Target:
    """Where the runs live: a tether store URL plus a way to count its runs by status."""

    def __init__(self, url: str, count: Callable[[], dict[str, int]], cleanup: Callable[[], None]):
        self.url, self.counts, self.cleanup = url, count, cleanup

    def done(self, n: int) -> Callable[[], bool]:
        return lambda: self.counts().get("COMPLETED", 0) >= n


def pg_target(base: str, schema: str = PG_SCHEMA) -> Target:
    """A fresh schema on the server at ``base``; counts read on a connection of the driver's
    own, opened again when the server dropped it (a fault)."""
    import psycopg

    bl.reset_pg_schema(base, schema)
    conn: list[Any] = []

    def counts() -> dict[str, int]:
        for _ in range(2):
            try:
                if not conn:
                    conn.append(psycopg.connect(base, autocommit=True, connect_timeout=5))
                rows = (
                    conn[0]
                    .execute(f'SELECT status, count(*) FROM "{schema}".tether_runs GROUP BY status')
                    .fetchall()
                )
                return {s: int(c) for s, c in rows}
            except psycopg.errors.UndefinedTable:
                return {}
            except psycopg.OperationalError:
                while conn:
                    conn.pop().close()
        return {}

    def cleanup() -> None:
        while conn:
            conn.pop().close()
        bl.drop_pg_schema(base, schema)

    return Target(bl.with_query(base, schema=schema), counts, cleanup)


def sqlite_target(path: Path) -> Target:
    bl.remove_sqlite(path)

    def counts() -> dict[str, int]:
        conn = sqlite3.connect(path, timeout=30)
        try:
            rows = conn.execute("SELECT status, count(*) FROM tether_runs GROUP BY status")
            return {s: int(c) for s, c in rows.fetchall()}
        except sqlite3.OperationalError:
            return {}
        finally:
            conn.close()

    return Target(f"sqlite:///{path}", counts, lambda: bl.remove_sqlite(path))


def worker_cmd(url: str, concurrency: int = 64, ttl: float = 5.0) -> Callable[[int], list[str]]:
    return lambda i: [
        sys.executable,
        str(APP),
        url,
        "--concurrency",
        str(concurrency),
        "--ttl",
        str(ttl),
    ]


async def setup_store(url: str) -> None:
    """Create the schema once, before the workers race to."""
    async with Runtime(url, workflows=WORKFLOWS, recover=False):
        pass


# -- throughput and latency ----------------------------------------------------------------------
async def submit_many(rt: Runtime, n: int) -> tuple[float, float]:
    sem = asyncio.Semaphore(SUBMITS_IN_FLIGHT)

    async def one_submit() -> None:
        async with sem:
            await rt.submit(one)

    t0 = time.time()
    await asyncio.gather(*(one_submit() for _ in range(n)))
    return t0, time.time()


async def throughput(target: Target, workers: int, n: int) -> dict[str, Any]:
    """A backlog of ``n`` runs drained by W workers started after it was queued; then ``n``
    more runs submitted while the same workers serve (submit→complete)."""
    await setup_store(target.url)
    async with Runtime(target.url, workflows=WORKFLOWS, recover=False) as rt:
        await submit_many(rt, n)
        with ql.WorkerPool(worker_cmd(target.url), workers, {}) as pool:
            t_drained = await asyncio.to_thread(ql.wait_for, target.done(n), interval=0.02)
            t_ready = pool.first_ready()
            t0, t_sub = await submit_many(rt, n)
            t1 = await asyncio.to_thread(ql.wait_for, target.done(2 * n), interval=0.02)
    return {
        "runs_per_s": round(n / (t_drained - t_ready), 1),
        "submit_to_complete_runs_per_s": round(n / (t1 - t0), 1),
        "submit_runs_per_s": round(n / (t_sub - t0), 1),
        "runs": n,
    }


async def paced_latency(rt: Runtime, samples: int) -> list[float]:
    """Submit ``samples`` runs one at a time, each after the previous one started."""
    out = []
    for _ in range(samples):
        t0 = time.time()
        h = await rt.submit(one)
        res = await rt.wait(h.run_id, timeout=ql.DONE_TIMEOUT_S)
        out.append(res.state["t"] - t0)
        await asyncio.sleep(ql.LATENCY_GAP_S)
    return out


async def paced_resume(rt: Runtime, samples: int) -> list[float]:
    """Park ``samples`` runs on interrupt(), then answer them one at a time."""
    ids = [(await rt.submit(ask)).run_id for _ in range(samples)]
    for run_id in ids:
        await rt.wait(run_id, timeout=ql.DONE_TIMEOUT_S)  # parked (ESCALATED)
    out = []
    for run_id in ids:
        await asyncio.sleep(ql.LATENCY_GAP_S)
        t0 = time.time()
        await rt.resume(run_id, "yes", execute=False)
        res = await rt.wait(run_id, timeout=ql.DONE_TIMEOUT_S)
        out.append(res.state["t"] - t0)
    return out


async def latency(target: Target, workers: int, samples: int) -> dict[str, Any]:
    await setup_store(target.url)
    with ql.WorkerPool(worker_cmd(target.url), workers, {}):
        async with Runtime(target.url, workflows=WORKFLOWS, recover=False) as rt:
            await paced_latency(rt, 3)  # warm-up: connections, first claims
            return ql.latency_summary(await paced_latency(rt, samples))


async def wakeup(target: Target, mode: str, samples: int) -> dict[str, Any]:
    """submit → first step and resume → continues, one worker (``process`` or ``embedded``)."""
    await setup_store(target.url)
    embedded = mode == "embedded"
    pool = None if embedded else ql.WorkerPool(worker_cmd(target.url), 1, {})
    try:
        async with Runtime(target.url, workflows=WORKFLOWS, recover=embedded) as rt:
            await paced_latency(rt, 3)
            sub = await paced_latency(rt, samples)
            res = await paced_resume(rt, samples)
    finally:
        if pool is not None:
            pool.stop()
    return {"submit": ql.latency_summary(sub), "resume": ql.latency_summary(res)}


def tether_version() -> str:
    try:
        return importlib.metadata.version("tether")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree (PYTHONPATH=src)
        import tether

        return str(getattr(tether, "__version__", "source"))


# -- the whole script ------------------------------------------------------------------------------
def measure(notes: list[str], name: str, fn: Callable[[], Any]) -> Any:
    started = time.perf_counter()
    try:
        out = fn()
    except Exception as exc:
        notes.append(bl.error_note(name, exc))
        out = None
    sys.stderr.write(f"  {name}: {time.perf_counter() - started:.1f} s\n")
    return out


def run_all(quick: bool, only: set[str]) -> dict[str, Any]:
    size = "quick" if quick else "full"
    base = bl.pg_base_url()
    notes: list[str] = []
    out: dict[str, Any] = {
        "system": "tether",
        "versions": {"tether": tether_version()},
        "notes": notes,
    }

    def on_pg(fn: Callable[[Target], Any]) -> Callable[[], Any]:
        def go() -> Any:
            t = pg_target(base)
            try:
                return asyncio.run(fn(t))
            finally:
                t.cleanup()

        return go

    if "throughput" in only:
        out["throughput"] = {
            f"{w}w": measure(
                notes,
                f"throughput {w} worker(s)",
                on_pg(lambda t, w=w: throughput(t, w, ql.THROUGHPUT_RUNS[size])),
            )
            for w in ql.WORKER_COUNTS
        }
    if "latency" in only:
        out["latency"] = measure(
            notes,
            "enqueue→start latency",
            on_pg(lambda t: latency(t, 4, ql.LATENCY_SAMPLES[size])),
        )
    if "wakeup" in only:
        samples = ql.LATENCY_SAMPLES[size]
        wake: dict[str, Any] = {}
        for mode in ("process", "embedded"):
            wake[f"postgres_{mode}"] = measure(
                notes, f"wake-up postgres {mode}", on_pg(lambda t, m=mode: wakeup(t, m, samples))
            )
            with tempfile.TemporaryDirectory() as tmp:
                t = sqlite_target(Path(tmp) / "queue.db")
                wake[f"sqlite_{mode}"] = measure(
                    notes,
                    f"wake-up sqlite {mode}",
                    lambda t=t, m=mode: asyncio.run(wakeup(t, m, samples)),
                )
        out["wakeup"] = wake
    if only & {"faults", "chaos"}:
        import queue_bench_faults as qf

        if "faults" in only:
            out["faults"] = measure(notes, "faults", lambda: qf.run_faults(quick))
        if "chaos" in only:
            out["chaos"] = measure(notes, "chaos", lambda: qf.run_chaos(base, quick))
    return out


ALL = ("throughput", "latency", "wakeup", "faults", "chaos")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller workloads")
    ap.add_argument("--repeats", type=int, default=1, help="accepted for run.py; unused")
    ap.add_argument("--only", default=",".join(ALL), help="comma-separated measures")
    args = ap.parse_args()
    only = {m.strip() for m in args.only.split(",") if m.strip()}
    if unknown := only - set(ALL):
        ap.error(f"unknown measure(s) {sorted(unknown)}; choose from {ALL}")
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    bl.emit(run_all(args.quick, only))


if __name__ == "__main__":
    main()
