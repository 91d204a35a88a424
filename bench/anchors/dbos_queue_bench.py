"""DBOS queues anchor of the queue bench (runs inside ``bench/.venv-anchors``, DBOS 3.4).

    bench/.venv-anchors/bin/python bench/anchors/dbos_queue_bench.py [--quick]

Prints one JSON object on stdout. The same workloads as ``bench/queue_bench.py``:

* Workers: W processes (``--worker``), each ``DBOS.launch()`` on the system database (schema
  ``bench_queue_dbos`` of the bench server) and ``DBOS.register_queue("qb",
  worker_concurrency=64)`` at DBOS's default polling interval (1 s; DBOS queues are found by
  polling, not by notification). The work is workflow ``qb_one`` calling one ``@DBOS.step()``
  that returns ``time.time()``: a 1-step durable run.
* The driver enqueues with a ``DBOSClient`` (as another process would), 16 enqueues in flight
  (threads), and counts ``SUCCESS`` rows of ``workflow_status``.
* throughput_{1,2,4}w: 2,000 runs (400 quick) enqueued, then W workers started: runs/s = runs /
  (last completion seen - first worker ready); then 2,000 more enqueued while they serve
  (``submit_to_complete_runs_per_s``).
* latency: 4 idle workers, 100 runs (30 quick) enqueued one at a time 30 ms apart; enqueue→start
  = the step's stamp - the time just before ``enqueue``.
* ``extras.latency_polling_10ms``: the same with ``polling_interval_sec=0.01`` (a tuned queue).

Every connection runs at ``synchronous_commit=off`` (tether's default; libpq ``options`` in the
URL), so the three systems flush alike; the check is done on the driver's connection.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import importlib.metadata
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import benchlib as bl
import queue_benchlib as ql
from dbos import DBOS, DBOSClient, DBOSConfig

SCHEMA = "bench_queue_dbos"
QUEUE = "qb"
APP = "tetherqueuebench"


@DBOS.step()
def go() -> float:
    return time.time()


@DBOS.workflow(name="qb_one")
def qb_one() -> float:
    return go()


def system_url() -> str:
    return bl.with_query(bl.pg_base_url(), options="-csynchronous_commit=off")


def worker(poll: float) -> None:
    config: DBOSConfig = {
        "name": APP,
        "system_database_url": system_url(),
        "dbos_system_schema": SCHEMA,
        "log_level": "WARNING",
    }
    DBOS(config=config)
    DBOS.launch()
    DBOS.register_queue(
        QUEUE, worker_concurrency=64, polling_interval_sec=poll, on_conflict="always_update"
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(f"READY {os.getpid()}", flush=True)
    stop.wait()
    DBOS.destroy(workflow_completion_timeout_sec=0)
    os._exit(0)


class Driver:
    def __init__(self) -> None:
        import psycopg

        self.client = DBOSClient(system_database_url=system_url(), dbos_system_schema=SCHEMA)
        self.conn = psycopg.connect(system_url(), autocommit=True)
        level = self.conn.execute("SHOW synchronous_commit").fetchone()
        assert level and level[0] == "off", level

    def done(self) -> int:
        row = self.conn.execute(
            f"SELECT count(*) FROM \"{SCHEMA}\".workflow_status WHERE status = 'SUCCESS'"
        ).fetchone()
        return int(row[0]) if row else 0

    def enqueue(self) -> Any:
        return self.client.enqueue({"queue_name": QUEUE, "workflow_name": "qb_one"})

    def close(self) -> None:
        self.client.destroy()
        self.conn.close()


def pool(workers: int, poll: float) -> ql.WorkerPool:
    me = str(Path(__file__).resolve())
    return ql.WorkerPool(lambda i: [sys.executable, me, "--worker", str(poll)], workers, {})


def fresh() -> None:
    bl.reset_pg_schema(bl.pg_base_url(), SCHEMA)
    # the schema is created by the first DBOS.launch (a worker); launch one alone first, so
    # concurrent launches never race the migrations
    with pool(1, 1.0):
        pass


def throughput(workers: int, n: int) -> dict[str, Any]:
    """A backlog drained by W workers started after it; then ``n`` more enqueued meanwhile."""
    fresh()
    d = Driver()
    try:

        def enqueue_many() -> tuple[float, float]:
            t0 = time.time()
            with concurrent.futures.ThreadPoolExecutor(16) as ex:
                list(ex.map(lambda _: d.enqueue(), range(n)))
            return t0, time.time()

        enqueue_many()
        with pool(workers, 1.0) as p:
            t_drained = ql.wait_for(lambda: d.done() >= n, interval=0.02)
            t_ready = p.first_ready()
            t0, t_sub = enqueue_many()
            t1 = ql.wait_for(lambda: d.done() >= 2 * n, interval=0.02)
    finally:
        d.close()
    return {
        "runs_per_s": round(n / (t_drained - t_ready), 1),
        "submit_to_complete_runs_per_s": round(n / (t1 - t0), 1),
        "submit_runs_per_s": round(n / (t_sub - t0), 1),
        "runs": n,
    }


def latency(workers: int, samples: int, poll: float) -> dict[str, Any]:
    fresh()
    with pool(workers, poll):
        d = Driver()
        try:
            out = []
            for i in range(samples + 3):
                t0 = time.time()
                started = d.enqueue().get_result()
                if i >= 3:  # the first three warm up
                    out.append(started - t0)
                time.sleep(ql.LATENCY_GAP_S)
        finally:
            d.close()
    return ql.latency_summary(out)


def run_all(quick: bool) -> dict[str, Any]:
    size = "quick" if quick else "full"
    notes: list[str] = [
        "DBOS queues poll (polling_interval_sec, default 1 s); the extras give a 10 ms interval"
    ]
    out: dict[str, Any] = {
        "system": "dbos",
        "versions": {"dbos": importlib.metadata.version("dbos")},
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
            sys.stderr.write(f"  dbos {name}: {time.perf_counter() - started:.1f} s\n")

    try:
        out["throughput"] = {
            f"{w}w": measure(
                f"throughput {w}w", lambda w=w: throughput(w, ql.THROUGHPUT_RUNS[size])
            )
            for w in ql.WORKER_COUNTS
        }
        samples = ql.LATENCY_SAMPLES[size]
        out["latency"] = measure("latency", lambda: latency(4, samples, 1.0))
        out["extras"]["latency_polling_10ms"] = measure(
            "latency 10 ms polling", lambda: latency(4, samples, 0.01)
        )
    finally:
        bl.drop_pg_schema(bl.pg_base_url(), SCHEMA)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeats", type=int, default=1, help="accepted for run.py; unused")
    ap.add_argument("--worker", type=float, default=None, metavar="POLL_S")
    args = ap.parse_args()
    if args.worker is not None:
        worker(args.worker)
        return
    bl.emit(run_all(args.quick))


if __name__ == "__main__":
    main()
