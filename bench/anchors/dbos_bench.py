"""DBOS anchor: the bench workloads on DBOS Transact 3.4 (runs inside ``bench/.venv-anchors``).

Prints one JSON object on stdout. DBOS is a durable-workflow library, not a graph runtime, so
each workload is mapped onto its nearest honest equivalent:

* A "step" is one ``@DBOS.step()`` call inside a ``@DBOS.workflow()``: DBOS records the step's
  output in its system database before the workflow goes on, as tether checkpoints a step.
* Every measure runs in its own fresh interpreter (``--case``): DBOS is a process-wide
  singleton configured once per process.
* SQLite: the system database is a file pre-created in WAL mode (``PRAGMA journal_mode=WAL`` is
  persistent; DBOS itself leaves the journal mode alone), ``synchronous`` at SQLite's default.
  ``extras.sqlite_rollback_journal_us`` is the same run on DBOS's default (rollback journal).
  ``extras.sqlite_sync_normal_us`` is the WAL run with ``PRAGMA synchronous=NORMAL`` (tether's
  default; DBOS has no setting for it, so a SQLAlchemy ``connect`` listener on every ``Engine``
  sets it on each connection DBOS opens, and the child checks it took).
* Postgres: the system database on the bench server, in a dedicated schema ``bench_dbos``
  (``dbos_system_schema``), dropped first and at the end. ``extras.postgres_sync_commit_off_us``
  is the same with ``synchronous_commit=off`` (tether's default) passed as libpq ``options`` in
  the system database URL.
* per_step_us: ``cycle(1000)`` calls steps ``a`` and ``b`` alternately (each returns n + 1)
  until n = 1,000: 1,000 steps; wall time of the workflow call / 1,000; median of the repeats
  after an untimed 20-step warm-up. ``memory`` is null: DBOS has no non-durable mode.
* growth_200x1kb: a workflow calls a step 200 times, each returning a 1 KB message that the
  workflow appends to a local list (its state lives in workflow locals, rebuilt from recorded
  step outputs on recovery); it returns the count, not the list. bytes: ``benchlib.sqlite_bytes``
  of the system database after the process has exited.
* concurrency_200x20_10ms: 200 async workflows started with ``DBOS.start_workflow_async``,
  each awaiting 20 async steps that ``await asyncio.sleep(0.01)``; runs_per_s = 200 / wall time
  from the first start to the last result.
* resume_ms: DBOS has no interrupt/resume of a graph; the analogue is its message wake-up. A
  workflow blocks in ``DBOS.recv``; another thread sends with a ``DBOSClient`` (its own engine
  and connections, as another process would); measured from just before ``send`` until the
  workflow's next statement runs. SQLite has no push notifications: DBOS polls every
  ``notification_listener_polling_interval_sec`` (default 1 s, left at its default), so the
  figure is dominated by that interval; the sends are spread evenly over one polling period
  so the median is the expected latency, not a lucky phase. The Postgres figure (LISTEN/NOTIFY)
  is in ``extras.wakeup_postgres_ms``.
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
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import benchlib as bl
from dbos import DBOS, DBOSClient, DBOSConfig

APP = "tetherbench"
PG_SCHEMA = "bench_dbos"


# -- workflows (registered at import, before DBOS is configured) -------------------------------
@DBOS.step()
def step_a(n: int) -> int:
    return n + 1


@DBOS.step()
def step_b(n: int) -> int:
    return n + 1


@DBOS.workflow()
def cycle(limit: int) -> int:
    n = 0
    while n < limit:
        n = step_a(n)
        n = step_b(n)
    return n


STAMPS: list[float] = []


@DBOS.step()
def add_msg(i: int) -> str:
    STAMPS.append(time.perf_counter())
    return bl.payload(i)


@DBOS.workflow()
def grow(k: int) -> int:
    msgs: list[str] = []
    for i in range(k):
        msgs.append(add_msg(i))
    return len(msgs)


@DBOS.step()
async def tick() -> None:
    await asyncio.sleep(bl.CONC_SLEEP_S)


@DBOS.workflow()
async def ticker(k: int) -> int:
    for _ in range(k):
        await tick()
    return k


WOKE: list[float] = []


@DBOS.workflow()
def waiter() -> str:
    msg = DBOS.recv("go", timeout_seconds=30)
    WOKE.append(time.perf_counter())
    return str(msg)


# -- child side: one case per process ----------------------------------------------------------
RELAXED = False
"""``--relaxed``: SQLite ``synchronous=NORMAL`` / Postgres ``synchronous_commit=off``."""


def system_url(backend: str, db: str) -> str:
    if backend == "sqlite":
        return f"sqlite:///{db}"
    base = bl.pg_base_url()
    return bl.with_query(base, options="-csynchronous_commit=off") if RELAXED else base


def relax_sqlite() -> None:
    """``PRAGMA synchronous=NORMAL`` on every SQLite connection any engine opens."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    @event.listens_for(Engine, "connect")
    def _normal(dbapi_conn: Any, _record: Any) -> None:
        if type(dbapi_conn).__module__.startswith("sqlite3"):
            dbapi_conn.execute("PRAGMA synchronous=NORMAL")


def check_level(backend: str) -> None:
    """Fail loudly when the durability level asked for did not take."""
    from dbos._dbos import _get_dbos_instance
    from sqlalchemy import text

    engine = _get_dbos_instance()._sys_db.engine
    with engine.connect() as conn:
        if backend == "sqlite":
            level = conn.execute(text("PRAGMA synchronous")).scalar()
            assert level == (1 if RELAXED else 2), level
        else:
            level = conn.execute(text("SHOW synchronous_commit")).scalar()
            assert level == ("off" if RELAXED else "on"), level


def launch(backend: str, db: str) -> None:
    config: DBOSConfig = {
        "name": APP,
        "system_database_url": system_url(backend, db),
        "log_level": "WARNING",
    }
    if backend == "postgres":
        config["dbos_system_schema"] = PG_SCHEMA
    DBOS(config=config)
    DBOS.launch()


def case_per_step(repeats: int) -> dict[str, Any]:
    cycle(20)  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        assert cycle(bl.CYCLE_STEPS) == bl.CYCLE_STEPS
        times.append((time.perf_counter() - t0) / bl.CYCLE_STEPS * 1e6)
    return {"us": bl.median(times)}


def case_growth(repeats: int) -> dict[str, Any]:
    assert grow(bl.GROWTH_STEPS) == bl.GROWTH_STEPS
    STAMPS.append(time.perf_counter())
    return {"stamps": STAMPS}


def case_concurrency(repeats: int) -> dict[str, Any]:
    async def once() -> float:
        t0 = time.perf_counter()
        handles = await asyncio.gather(
            *(DBOS.start_workflow_async(ticker, bl.CONC_STEPS) for _ in range(bl.CONC_RUNS))
        )
        results = await asyncio.gather(*(h.get_result() for h in handles))
        assert all(r == bl.CONC_STEPS for r in results)
        return bl.CONC_RUNS / (time.perf_counter() - t0)

    async def all_runs() -> list[float]:
        return [await once() for _ in range(repeats)]

    return {"runs_per_s": bl.median(asyncio.run(all_runs()))}


def case_wakeup(repeats: int, backend: str, db: str) -> dict[str, Any]:
    kw: dict[str, Any] = {"system_database_url": system_url(backend, db)}
    if backend == "postgres":
        kw["dbos_system_schema"] = PG_SCHEMA
    client = DBOSClient(**kw)
    latencies = []
    for r in range(repeats):
        handle = DBOS.start_workflow(waiter)
        # let it block in recv, then send at phases spread evenly over a 1 s polling period
        time.sleep(0.3 + r / repeats)
        t0 = time.perf_counter()
        client.send(handle.get_workflow_id(), f"m{r}", topic="go")
        assert handle.get_result() == f"m{r}"
        latencies.append((WOKE[-1] - t0) * 1e3)
    client.destroy()
    return {"ms": bl.median(latencies), "all_ms": [round(x, 2) for x in latencies]}


def run_case(case: str, backend: str, db: str, repeats: int) -> None:
    if RELAXED and backend == "sqlite":
        relax_sqlite()
    launch(backend, db)
    try:
        check_level(backend)
        if case == "per_step":
            out = case_per_step(repeats)
        elif case == "growth":
            out = case_growth(repeats)
        elif case == "concurrency":
            out = case_concurrency(repeats)
        elif case == "wakeup":
            out = case_wakeup(repeats, backend, db)
        elif case == "empty":
            out = {}
        else:
            raise SystemExit(f"unknown case {case}")
    finally:
        DBOS.destroy()
    bl.emit(out)


# -- parent side ---------------------------------------------------------------------------------
def spawn(
    case: str, backend: str, db: str | Path, repeats: int, relaxed: bool = False
) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--case", case, "--backend", backend, "--db", str(db)]
    if relaxed:
        cmd.append("--relaxed")
    proc = subprocess.run(
        [*cmd, "--repeats", str(repeats)], capture_output=True, text=True, timeout=600
    )
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["?"])[-1]
        raise RuntimeError(f"child {case}/{backend} exited {proc.returncode}: {tail}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def sqlite_case(
    tmp: Path, case: str, repeats: int, *, wal: bool = True, relaxed: bool = False
) -> tuple[dict[str, Any], Path]:
    db = tmp / f"dbos-{case}-{time.monotonic_ns()}.db"
    if wal:
        bl.enable_wal(db)
    return spawn(case, "sqlite", db, repeats, relaxed), db


def pg_case(case: str, repeats: int, relaxed: bool = False) -> dict[str, Any]:
    base = bl.pg_base_url()
    bl.reset_pg_schema(base, PG_SCHEMA)
    try:
        return spawn(case, "postgres", "-", repeats, relaxed)
    finally:
        bl.drop_pg_schema(base, PG_SCHEMA)


def growth(tmp: Path, repeats: int) -> tuple[int, float, float]:
    sizes, stamp_lists = [], []
    for _ in range(repeats):
        out, db = sqlite_case(tmp, "growth", 1)
        sizes.append(bl.sqlite_bytes(db))
        stamp_lists.append(out["stamps"])
        bl.remove_sqlite(db)
    return (int(bl.median(sizes)), *bl.growth_ratios(stamp_lists))


def empty_bytes(tmp: Path) -> int:
    """Bytes of a system database holding DBOS's schema and no workflow."""
    _, db = sqlite_case(tmp, "empty", 1)
    size = bl.sqlite_bytes(db)
    bl.remove_sqlite(db)
    return size


def _try(notes: list[str], measure: str, fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except Exception as exc:  # a measure that fails becomes null + a note, never a number
        notes.append(bl.error_note(measure, exc))
        return None


def run_all(repeats: int) -> dict[str, Any]:
    notes = [
        "per_step memory: null, DBOS has no non-durable mode (every step is recorded)",
        "resume_ms: DBOS.recv/DBOS.send wake-up latency on SQLite (DBOS has no graph "
        "interrupt/resume); SQLite wake-ups are found by a poller (default interval 1 s)",
    ]
    extras: dict[str, Any] = {}
    r = bl.rnd
    wake_repeats = max(repeats, 3) + 2
    with tempfile.TemporaryDirectory(prefix="bench-dbos-") as d:
        tmp = Path(d)
        sqlite = _try(notes, "per_step sqlite", lambda: sqlite_case(tmp, "per_step", repeats)[0])
        rollback = _try(
            notes,
            "per_step sqlite rollback journal",
            lambda: sqlite_case(tmp, "per_step", repeats, wal=False)[0],
        )
        extras["sqlite_rollback_journal_us"] = r(rollback["us"]) if rollback else None
        normal = _try(
            notes,
            "per_step sqlite synchronous=NORMAL",
            lambda: sqlite_case(tmp, "per_step", repeats, relaxed=True)[0],
        )
        extras["sqlite_sync_normal_us"] = r(normal["us"]) if normal else None
        postgres = _try(notes, "per_step postgres", lambda: pg_case("per_step", repeats))
        sc_off = _try(
            notes,
            "per_step postgres synchronous_commit=off",
            lambda: pg_case("per_step", repeats, relaxed=True),
        )
        extras["postgres_sync_commit_off_us"] = r(sc_off["us"]) if sc_off else None
        grown = _try(notes, "growth_200x1kb", lambda: growth(tmp, repeats))
        extras["growth_step_time_ratio_median"] = r(grown[2], 3) if grown else None
        extras["growth_empty_db_bytes"] = _try(notes, "empty db", lambda: empty_bytes(tmp))
        conc = _try(notes, "concurrency", lambda: sqlite_case(tmp, "concurrency", repeats)[0])
        wake = _try(notes, "wakeup sqlite", lambda: sqlite_case(tmp, "wakeup", wake_repeats)[0])
        wake_pg = _try(notes, "wakeup postgres", lambda: pg_case("wakeup", wake_repeats))
    extras["wakeup_sqlite_all_ms"] = wake["all_ms"] if wake else None
    extras["wakeup_postgres_ms"] = r(wake_pg["ms"], 3) if wake_pg else None
    extras["wakeup_postgres_all_ms"] = wake_pg["all_ms"] if wake_pg else None
    if wake_pg:
        notes.append(f"wake-up with the system database in Postgres: {wake_pg['ms']:.2f} ms")
    return {
        "system": "dbos",
        "versions": {d: importlib.metadata.version(d) for d in ("dbos", "sqlalchemy", "psycopg")},
        "per_step_us": {
            "memory": None,
            "sqlite": r(sqlite["us"]) if sqlite else None,
            "postgres": r(postgres["us"]) if postgres else None,
        },
        "growth_200x1kb": {
            "bytes": grown[0] if grown else None,
            "step_time_ratio_200_vs_10": r(grown[1], 3) if grown else None,
        },
        "concurrency_200x20_10ms": {"runs_per_s": r(conc["runs_per_s"], 1) if conc else None},
        "resume_ms": r(wake["ms"], 3) if wake else None,
        "extras": extras,
        "notes": notes,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--case", choices=["per_step", "growth", "concurrency", "wakeup", "empty"])
    ap.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--db", default="")
    ap.add_argument("--relaxed", action="store_true", help="synchronous=NORMAL / commit off")
    args = ap.parse_args()
    global RELAXED
    RELAXED = args.relaxed
    if args.case:
        run_case(args.case, args.backend, args.db, args.repeats)
    else:
        bl.emit(run_all(args.repeats))


if __name__ == "__main__":
    main()
