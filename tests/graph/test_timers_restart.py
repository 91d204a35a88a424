"""A run sleeping 2 s survives a full restart of every worker (real processes, SIGKILL) and
wakes exactly once, on a fresh worker, no sooner than its deadline."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.graph.timer_app import NAP
from tether import RunStatus, Runtime
from tether.store.sqlite import SqliteStore

ROOT = Path(__file__).resolve().parents[2]


def spawn(db: Path, out: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.graph.timer_app", str(db), str(out)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


def kill(procs: list[subprocess.Popen[str]]) -> None:
    for p in procs:
        p.send_signal(signal.SIGKILL)
    for p in procs:
        p.wait(timeout=60)


async def sleeping_until(rt: Runtime, run_id: str) -> float:
    for _ in range(12_000):  # a generous deadline: a loaded 2-core machine
        evs = [e for e in await rt.store.list_events(run_id) if e.type == "sleeping"]
        if evs:
            return float(evs[0].data["until"])
        await asyncio.sleep(0.01)
    raise AssertionError("the run never went to sleep")


def test_a_sleeping_run_survives_a_restart_of_every_worker(tmp_path: Path) -> None:
    for attempt in range(3):  # the kill must land while the run sleeps: retry if load delayed it
        db, out = tmp_path / f"runs{attempt}.db", tmp_path / f"out{attempt}.txt"
        workers = [spawn(db, out), spawn(db, out)]
        try:
            killed_in_time, until, run_id = asyncio.run(_sleep_then_kill(db, workers))
        finally:
            kill([w for w in workers if w.poll() is None])
        if killed_in_time:
            break
    else:
        raise AssertionError("could not kill the workers while the run slept (3 tries)")
    fresh = spawn(db, out)
    try:
        status, done_at, sleeps = asyncio.run(_until_done(db, run_id))
    finally:
        kill([fresh])
    assert status is RunStatus.COMPLETED
    assert done_at >= until  # woke no sooner than its deadline
    assert sleeps == 1  # the re-run's sleep returned at once (its deadline is journaled)
    assert out.read_text().splitlines() == ["before", "after"]  # each effect exactly once


async def _sleep_then_kill(
    db: Path, workers: list[subprocess.Popen[str]]
) -> tuple[bool, float, str]:
    async with Runtime(SqliteStore(db), workflows=[NAP], recover=False) as rt:
        handle = await rt.submit(NAP, {})
        until = await sleeping_until(rt, handle.run_id)
        kill(workers)
        in_time = time.time() < until
        run = await rt.get_run(handle.run_id)
        return in_time and run.status is not RunStatus.COMPLETED, until, handle.run_id


async def _until_done(db: Path, run_id: str) -> tuple[RunStatus, float, int]:
    async with Runtime(SqliteStore(db), workflows=[NAP], recover=False) as rt:
        res = await rt.wait(run_id, timeout=300)
        trs = await rt.store.list_transitions(run_id)
        evs = await rt.store.list_events(run_id)
        return res.status, trs[-1].ts, sum(e.type == "sleeping" for e in evs)
