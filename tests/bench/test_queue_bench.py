"""The queue bench's tether side, in a tiny size, so that it cannot rot: real worker processes
(``bench/queue_bench_app.py``, a ``tether.worker.Worker`` each) on SQLite, and on the shared
PostgreSQL when it is reachable; plus the step-log arithmetic the fault figures rest on."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import queue_bench as qb  # noqa: E402  (bench/ is not a package)
import queue_benchlib as ql  # noqa: E402


async def test_throughput_on_sqlite_drains_a_backlog_and_serves_submits(tmp_path: Path) -> None:
    target = qb.sqlite_target(tmp_path / "queue.db")
    out = await qb.throughput(target, 1, 6)
    assert target.counts() == {"COMPLETED": 12}
    assert out["runs"] == 6
    assert out["runs_per_s"] > 0 and out["submit_to_complete_runs_per_s"] > 0


async def test_wakeup_embedded_measures_submit_and_resume(tmp_path: Path) -> None:
    target = qb.sqlite_target(tmp_path / "queue.db")
    out = await qb.wakeup(target, "embedded", 2)
    assert out["submit"]["samples"] == 2 and out["resume"]["samples"] == 2
    assert out["submit"]["p50_ms"] > 0 and out["resume"]["p50_ms"] > 0


@pytest.mark.postgres
def test_worker_sigkill_fault_on_postgres_loses_nothing() -> None:
    import queue_bench_faults as qf

    from tests.durability.conftest import PG_DSN, _pg_available
    from tests.durability.throwaway_pg import ThrowawayPostgres

    if not _pg_available():
        pytest.skip(f"PostgreSQL not reachable at {PG_DSN}")
    pg = ThrowawayPostgres.create()
    try:
        out = qf.fault_case(pg, "worker_sigkill", 12)
    finally:
        pg.close()
    assert (out["lost"], out["stuck"], out["effects_twice"]) == (0, 0, 0)
    assert out["completed"] == 12


def test_interrupted_runs_and_effects_twice_from_a_step_log() -> None:
    starts = [
        ("r1", 0, 10, 1.0),
        ("r1", 1, 10, 2.0),  # in flight on pid 10 at the fault (t=2.5)
        ("r1", 1, 20, 3.2),  # restarted on pid 20
        ("r2", 0, 20, 1.5),
        ("r2", 1, 20, 2.6),  # pid 20 was not killed: not cut
        ("r3", 0, 10, 2.4),  # finished its step before the fault: the next step is new
        ("r3", 1, 20, 2.9),
    ]
    cut = ql.interrupted_runs(starts, 2.5, {10})
    assert cut == {"r1": 3.2}
    calls = [("k1", 1, 1.0), ("k2", 1, 1.0), ("k1", 2, 2.0), ("k3", 3, 1.0), ("k3", 4, 1.1)]
    # k1 again on pid 2 with pid 1 alive: twice; k3 twice by live workers as well
    assert ql.effects_twice(calls) == (2, 0)
    # pid 1 SIGKILLed between its k1 call and pid 2's: re-sent after the crash, same key
    assert ql.effects_twice(calls, [(1, 1.5)]) == (1, 1)
    assert ql.effects_twice(calls, [(1, 2.5)]) == (2, 0)  # killed after the repeat
    assert ql.percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
