"""The queue bench's faults and chaos workload (tether side; imported by ``queue_bench.py``).

Faults run on a throwaway PostgreSQL 16 (``tests/durability/throwaway_pg.py``, the ``pgserver``
package), never on the shared server: 3 workers serve 200 runs (60 with ``--quick``) of 5 steps
x 20 ms, each step performing one journaled effect (``ctx.effect``) that appends its key to a
step log. Once 30 % of the runs completed, the fault:

* ``worker_sigkill``: SIGKILL one worker (the other two take its runs over);
* ``connection_killed``: ``pg_terminate_backend`` on every client session (all the workers'
  connections, listeners included);
* ``server_restart``: fast shutdown of the server, then start it again;

then every run must complete. Each reports ``lost`` (runs FAILED, CANCELLED or missing), ``stuck``
(runs not finished when the deadline passed), ``effects_twice`` (effect keys performed more than
once, from the step log, other than ``effects_resent_after_kill``: a key whose earlier call's worker
was SIGKILLed between the call and its journaled result, re-sent under the same key by the run's
next owner, which an ``idempotent=True`` effect allows) and ``recovery_s``: for a SIGKILL, from the
kill until the last of the killed worker's cut steps started again elsewhere; otherwise from the end
of the fault (connections gone; server accepting again) until every worker performed an effect again
(a store round trip).

``long_transaction``: trivial-run throughput (2 workers, same size as the throughput figure) with
and without another session holding a transaction open (``BEGIN; SELECT txid_current()``: the
oldest open xid pins vacuum's horizon), three rounds of each, alternated; ``ratio`` = median with /
median without, target >= 0.9.

Chaos (the shared server, schema ``bench_queue_chaos``): 300 runs x 10 steps of 10-50 ms (100
quick), one journaled effect in the last step of each run, 4 workers, one random worker SIGKILLed
every 0.3-1.0 s and replaced at once, until every run completed; three such rounds one after
another under the same kills (one quick). ``runs_per_s`` = runs / the rounds' wall time (each
from its first submit to its last run finished; ``rounds_runs_per_s`` each round's);
``kill_to_resumed``: per cut step, from the kill until that step started again on another worker
(p50/p95/max), over all rounds."""

from __future__ import annotations

import asyncio
import math
import random
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.durability.throwaway_pg

import benchlib as bl
import queue_benchlib as ql
from queue_bench import Target, pg_target, setup_store, throughput, worker_cmd
from queue_bench_app import WORKFLOWS, steps

from tether import Runtime

FAULT_RUNS = {"full": 200, "quick": 60}
FAULT_STEPS, FAULT_STEP_MS = 5, 20
CHAOS_RUNS = {"full": 300, "quick": 100}
CHAOS_STEPS = 10
CHAOS_ROUNDS = {"full": 3, "quick": 1}
"""Rounds of the chaos workload, one after another under the same kills: a fast machine runs
300 runs in about a second, inside which a kill every 0.3-1 s lands once or twice."""
FAULTS = ("worker_sigkill", "connection_killed", "server_restart")


async def submit_steps(
    url: str, n: int, k: int, sleep_ms: int, fx_last_only: bool = False
) -> float:
    async with Runtime(url, workflows=WORKFLOWS, recover=False) as rt:
        t0 = time.time()
        sem = asyncio.Semaphore(16)

        async def go() -> None:
            async with sem:
                await rt.submit(steps, {"n": k, "sleep_ms": sleep_ms, "fx_last_only": fx_last_only})

        await asyncio.gather(*(go() for _ in range(n)))
        return t0


def settle(target: Target, n: int, timeout: float) -> tuple[dict[str, int], float | None]:
    """Wait until ``n`` runs finished (or the deadline passed); the counts and the time."""
    finished = ("COMPLETED", "FAILED", "CANCELLED")
    try:
        t = ql.wait_for(lambda: sum(target.counts().get(s, 0) for s in finished) >= n, timeout)
    except TimeoutError:
        t = None
    return target.counts(), t


def verdict(
    counts: dict[str, int],
    n: int,
    effects: list[ql.Record],
    kills: Sequence[tuple[int, float]] = (),
) -> dict[str, Any]:
    done = counts.get("COMPLETED", 0)
    twice, resent = ql.effects_twice(effects, kills)
    bad = counts.get("FAILED", 0) + counts.get("CANCELLED", 0)
    total = sum(counts.values())
    return {
        "runs": n,
        "completed": done,
        "lost": bad + max(0, n - total),
        "stuck": total - done - bad,
        "effects_twice": twice,
        "effects_resent_after_kill": resent,
    }


def fault_case(pg: Any, kind: str, n: int) -> dict[str, Any]:
    import psycopg

    schema = f"qb_{kind}"
    url = f"postgresql://postgres@/postgres?host={pg.datadir}&schema={schema}"
    base = f"postgresql://postgres@/postgres?host={pg.datadir}"
    target = pg_target(base, schema)
    log = tempfile.mktemp(prefix="qb-log-")  # created by the workers' first append
    try:
        asyncio.run(setup_store(url))
        with ql.WorkerPool(worker_cmd(url), 3, {"QB_LOG": log}) as pool:
            asyncio.run(submit_steps(url, n, FAULT_STEPS, FAULT_STEP_MS))
            ql.wait_for(lambda: target.counts().get("COMPLETED", 0) >= n * 0.3)
            pids: set[int] | None = None
            kills: list[tuple[int, float]] = []
            if kind == "worker_sigkill":
                pids = {pool.procs[0].pid}
                fault_at = pool.kill(0)
                fault_end = fault_at
                kills.append((pool.procs[0].pid, fault_at))
            elif kind == "connection_killed":
                fault_at = time.time()
                with psycopg.connect(pg.dsn, autocommit=True) as conn:
                    killed = conn.execute(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
                    ).fetchone()
                fault_end = time.time()
            else:
                fault_at = time.time()
                pg.stop()
                pg.start()
                fault_end = time.time()
            counts, _ = settle(target, n, 120.0)
        starts, effects = ql.read_log(log)
        out = verdict(counts, n, effects, kills)
        if kind == "worker_sigkill":
            cut = ql.interrupted_runs(starts, fault_at, pids)
            times = [t for t in cut.values() if t is not None]
            out["runs_cut"] = len(cut)
            out["recovery_s"] = round(max(times) - fault_at, 3) if times else None
        else:
            firsts = ql.first_effect_per_worker(effects, fault_end)
            alive = set(pool.pids())
            seen = [t for pid, t in firsts.items() if pid in alive]
            out["recovery_s"] = round(max(seen) - fault_end, 3) if len(seen) == len(alive) else None
            out["fault_s"] = round(fault_end - fault_at, 3)
            if kind == "connection_killed":
                out["sessions_killed"] = int(killed[0]) if killed else 0
        return out
    finally:
        Path(log).unlink(missing_ok=True)
        target.cleanup()


def long_transaction(pg: Any, n: int, rounds: int = 3) -> dict[str, Any]:
    import psycopg

    base = f"postgresql://postgres@/postgres?host={pg.datadir}"

    def once(schema: str) -> float:
        t = pg_target(base, schema)
        try:
            return float(asyncio.run(throughput(t, 2, n))["runs_per_s"])
        finally:
            t.cleanup()

    # alternated, median of each: one pair alone swings +-10 % on a shared machine
    without: list[float] = []
    with_txn: list[float] = []
    for i in range(rounds):
        without.append(once(f"qb_no_txn_{i}"))
        holder = psycopg.connect(pg.dsn)
        try:
            holder.execute("SELECT txid_current()")  # an xid, held open until the rollback
            with_txn.append(once(f"qb_open_txn_{i}"))
        finally:
            holder.rollback()
            holder.close()
    a, b = bl.median(without), bl.median(with_txn)
    return {
        "runs_per_s_without": a,
        "runs_per_s_with": b,
        "ratio": round(b / a, 3),
        "target_ratio": 0.9,
        "rounds": {"without": without, "with": with_txn},
    }


def run_faults(quick: bool) -> dict[str, Any]:
    from tests.durability.throwaway_pg import ThrowawayPostgres

    size = "quick" if quick else "full"
    pg = ThrowawayPostgres.create()
    out: dict[str, Any] = {}
    try:
        for kind in FAULTS:
            try:
                out[kind] = fault_case(pg, kind, FAULT_RUNS[size])
            except Exception as exc:
                out[kind] = {"error": f"{type(exc).__name__}: {exc}"}
        try:
            out["long_transaction"] = long_transaction(pg, ql.THROUGHPUT_RUNS[size])
        except Exception as exc:
            out["long_transaction"] = {"error": f"{type(exc).__name__}: {exc}"}
    finally:
        pg.close()
    return out


def run_chaos(base: str, quick: bool) -> dict[str, Any]:
    n = CHAOS_RUNS["quick" if quick else "full"]
    rounds = CHAOS_ROUNDS["quick" if quick else "full"]
    schema = "bench_queue_chaos"
    target = pg_target(base, schema)
    url = target.url
    log = tempfile.mktemp(prefix="qb-chaos-")
    kills: list[tuple[int, float]] = []
    rng = random.Random(10)
    try:
        asyncio.run(setup_store(url))
        with ql.WorkerPool(worker_cmd(url), 4, {"QB_LOG": log}) as pool:
            stop = threading.Event()

            def chaos() -> None:
                while not stop.wait(rng.uniform(0.3, 1.0)):
                    i = rng.randrange(4)
                    pid = pool.procs[i].pid
                    kills.append((pid, pool.kill(i)))
                    pool.replace(i)

            killer = threading.Thread(target=chaos, daemon=True)
            killer.start()  # from the first submit on: runs start as they are submitted
            submitted, busy, rates = 0, 0.0, []
            try:
                for _ in range(rounds):
                    t0 = asyncio.run(submit_steps(url, n, CHAOS_STEPS, 0, fx_last_only=True))
                    submitted += n
                    counts, t1 = settle(target, submitted, ql.DONE_TIMEOUT_S)
                    if t1 is None:  # stuck: the verdict says how many
                        busy = math.nan
                        break
                    busy += t1 - t0
                    rates.append(round(n / (t1 - t0), 1))
            finally:
                stop.set()
                killer.join()
        starts, effects = ql.read_log(log)
        out = verdict(counts, submitted, effects, kills)
        resumed = []
        for pid, at in kills:
            resumed += [t - at for t in ql.interrupted_runs(starts, at, {pid}).values() if t]
        out.update(
            {
                "runs_per_s": None if math.isnan(busy) else round(submitted / busy, 1),
                "rounds_runs_per_s": rates,
                "steps_per_run": CHAOS_STEPS,
                "kills": len(kills),
                "kill_to_resumed": ql.latency_summary(resumed),
            }
        )
        return out
    finally:
        Path(log).unlink(missing_ok=True)
        target.cleanup()


if __name__ == "__main__":
    import json

    what = sys.argv[1] if len(sys.argv) > 1 else "faults"
    quick = "--quick" in sys.argv
    res = run_faults(quick) if what == "faults" else run_chaos(bl.pg_base_url(), quick)
    print(json.dumps(res, indent=2))
