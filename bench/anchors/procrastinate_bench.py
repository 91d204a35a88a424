"""procrastinate anchor of the queue bench (runs inside ``bench/.venv-anchors``, procrastinate 3).

    bench/.venv-anchors/bin/python bench/anchors/procrastinate_bench.py [--quick]

Prints one JSON object on stdout. The same workloads as ``bench/queue_bench.py``:

* Workers: W processes (``--worker``), each ``app.run_worker(concurrency=64)`` (LISTEN/NOTIFY on
  by default, polling every 5 s as the fallback). The work is task ``qb_one``, whose body appends
  ``start job<i> 0 <pid> <time.time()>`` to the step log ``$QB_LOG``: a job has no steps, so a
  run here is one job (deferred, fetched, finished).
* The app's tables live in schema ``bench_queue_procrastinate`` (libpq ``options`` set the
  ``search_path``), dropped and re-created first, dropped after; every connection runs at
  ``synchronous_commit=off`` (tether's default), checked on the driver's connection.
* throughput_{1,2,4}w: 2,000 jobs (400 quick) deferred (16 in flight, async), then W workers
  started: runs/s = jobs / (last ``succeeded`` seen - first worker ready); then 2,000 more
  deferred while they serve (``submit_to_complete_runs_per_s``).
* latency: 4 idle workers, 100 jobs (30 quick) deferred one at a time 30 ms apart;
  enqueue→start = the task's stamp - the time just before ``defer_async``.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import benchlib as bl
import queue_benchlib as ql
from procrastinate import App, PsycopgConnector

SCHEMA = "bench_queue_procrastinate"


def conninfo() -> str:
    return bl.with_query(
        bl.pg_base_url(), options=f"-csearch_path={SCHEMA} -csynchronous_commit=off"
    )


app = App(connector=PsycopgConnector(conninfo=conninfo()))


@app.task(name="qb_one")
def qb_one(i: int) -> None:
    path = os.environ.get("QB_LOG")
    if path:
        with open(path, "a") as f:
            f.write(f"start job{i} 0 {os.getpid()} {time.time():.6f}\n")


def worker() -> None:
    print(f"READY {os.getpid()}", flush=True)
    app.run_worker(concurrency=64, install_signal_handlers=True)


def pool(workers: int, log: str) -> ql.WorkerPool:
    me = str(Path(__file__).resolve())
    return ql.WorkerPool(lambda i: [sys.executable, me, "--worker"], workers, {"QB_LOG": log})


def fresh() -> None:
    bl.reset_pg_schema(bl.pg_base_url(), SCHEMA)
    with app.open():
        app.schema_manager.apply_schema()


def done_count(conn: Any) -> int:
    row = conn.execute(
        f"SELECT count(*) FROM \"{SCHEMA}\".procrastinate_jobs WHERE status = 'succeeded'"
    ).fetchone()
    return int(row[0]) if row else 0


def check_level(conn: Any) -> None:
    level = conn.execute("SHOW synchronous_commit").fetchone()
    assert level and level[0] == "off", level


async def defer_many(n: int) -> tuple[float, float]:
    async with app.open_async():
        sem = asyncio.Semaphore(16)

        async def one(i: int) -> None:
            async with sem:
                await qb_one.defer_async(i=i)

        t0 = time.time()
        await asyncio.gather(*(one(i) for i in range(n)))
        return t0, time.time()


def throughput(workers: int, n: int) -> dict[str, Any]:
    """A backlog drained by W workers started after it; then ``n`` more deferred meanwhile."""
    import psycopg

    fresh()
    with (
        tempfile.NamedTemporaryFile() as log,
        psycopg.connect(conninfo(), autocommit=True) as conn,
    ):
        check_level(conn)
        asyncio.run(defer_many(n))
        with pool(workers, log.name) as p:
            t_drained = ql.wait_for(lambda: done_count(conn) >= n, interval=0.02)
            t_ready = p.first_ready()
            t0, t_sub = asyncio.run(defer_many(n))
            t1 = ql.wait_for(lambda: done_count(conn) >= 2 * n, interval=0.02)
    return {
        "runs_per_s": round(n / (t_drained - t_ready), 1),
        "submit_to_complete_runs_per_s": round(n / (t1 - t0), 1),
        "submit_runs_per_s": round(n / (t_sub - t0), 1),
        "runs": n,
    }


async def paced(samples: int, log: str) -> list[float]:
    out = []
    async with app.open_async():
        for i in range(samples + 3):
            t0 = time.time()
            await qb_one.defer_async(i=i)
            seen: dict[str, float] = {}

            def started(i: int = i, seen: dict[str, float] = seen) -> bool:
                starts, _ = ql.read_log(log)
                for run, _, _, t in starts:
                    if run == f"job{i}":
                        seen["t"] = t
                        return True
                return False

            await asyncio.to_thread(ql.wait_for, started, ql.DONE_TIMEOUT_S, 0.005)
            if i >= 3:
                out.append(seen["t"] - t0)
            await asyncio.sleep(ql.LATENCY_GAP_S)
    return out


def latency(workers: int, samples: int) -> dict[str, Any]:
    fresh()
    with tempfile.NamedTemporaryFile() as log, pool(workers, log.name):
        return ql.latency_summary(asyncio.run(paced(samples, log.name)))


def run_all(quick: bool) -> dict[str, Any]:
    size = "quick" if quick else "full"
    notes: list[str] = []
    out: dict[str, Any] = {
        "system": "procrastinate",
        "versions": {"procrastinate": importlib.metadata.version("procrastinate")},
        "notes": notes,
        "extras": {},
    }

    def measure(name: str, fn: Any) -> Any:
        started = time.perf_counter()
        try:
            return fn()
        except Exception as exc:
            notes.append(bl.error_note(name, exc))
            return None
        finally:
            sys.stderr.write(f"  procrastinate {name}: {time.perf_counter() - started:.1f} s\n")

    try:
        out["throughput"] = {
            f"{w}w": measure(
                f"throughput {w}w", lambda w=w: throughput(w, ql.THROUGHPUT_RUNS[size])
            )
            for w in ql.WORKER_COUNTS
        }
        out["latency"] = measure("latency", lambda: latency(4, ql.LATENCY_SAMPLES[size]))
    finally:
        bl.drop_pg_schema(bl.pg_base_url(), SCHEMA)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeats", type=int, default=1, help="accepted for run.py; unused")
    ap.add_argument("--worker", action="store_true")
    args = ap.parse_args()
    if args.worker:
        worker()
        return
    bl.emit(run_all(args.quick))


if __name__ == "__main__":
    main()
