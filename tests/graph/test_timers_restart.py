"""A run sleeping 2 s survives a full restart of every worker (``tether worker`` processes, one
SIGKILLed, one SIGTERMed while the run sleeps) and wakes exactly once, on a fresh worker, no
sooner than its deadline; on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.graph.timer_app import NAP
from tether import RunStatus, Runtime
from tether.store.url import open_store

ROOT = Path(__file__).resolve().parents[2]
GUARD = 120.0
"""Hang guard (seconds): generous for a loaded machine."""


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'runs.db'}"
        return
    from tests.graph.conftest import PG_DSN, pg_schema

    with pg_schema("tether_naps") as schema:
        yield f"{PG_DSN}?schema={schema}"


def spawn(url: str, out: Path) -> subprocess.Popen[str]:
    """``tether worker`` serving ``NAP``; returns once it is claiming runs."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p),
        "TIMER_APP_OUT": str(out),
    }
    cmd = [sys.executable, "-m", "tether.cli", "--json", "worker", "--app"]
    proc = subprocess.Popen(
        [*cmd, "tests.graph.timer_app:NAP", "--store", url, "--poll-interval", "0.1"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline(), "the worker did not start"
    return proc


def stop(procs: list[subprocess.Popen[str]], sigs: list[int]) -> None:
    for p, sig in zip(procs, sigs, strict=True):
        if p.poll() is None:
            p.send_signal(sig)
    for p in procs:
        p.wait(timeout=GUARD)


async def sleeping_until(rt: Runtime, run_id: str) -> float:
    deadline = time.monotonic() + GUARD
    while time.monotonic() < deadline:
        evs = [e for e in await rt.store.list_events(run_id) if e.type == "sleeping"]
        if evs:
            return float(evs[0].data["until"])
        await asyncio.sleep(0.01)
    raise AssertionError("the run never went to sleep")


def test_a_sleeping_run_survives_a_restart_of_every_worker(store_url: str, tmp_path: Path) -> None:
    out = tmp_path / "effects.txt"
    for _ in range(3):  # the stop must land while the run sleeps: try again if load delayed it
        out.unlink(missing_ok=True)
        workers = [spawn(store_url, out), spawn(store_url, out)]
        try:
            in_time, until, run_id = asyncio.run(_sleep_then_stop(store_url, workers))
        finally:
            stop(workers, [signal.SIGKILL, signal.SIGKILL])
        if in_time:
            break
    else:
        raise AssertionError("could not stop the workers while the run slept (3 tries)")
    fresh = spawn(store_url, out)
    try:
        status, done_at, sleeps = asyncio.run(_until_done(store_url, run_id))
    finally:
        stop([fresh], [signal.SIGKILL])
    assert status is RunStatus.COMPLETED
    assert done_at >= until  # woke no sooner than its deadline
    assert sleeps == 1  # the re-run's sleep returned at once (its deadline is journaled)
    assert out.read_text().splitlines() == ["before", "after"]  # each effect exactly once


async def _sleep_then_stop(
    url: str, workers: list[subprocess.Popen[str]]
) -> tuple[bool, float, str]:
    async with Runtime(open_store(url), workflows=[NAP], recover=False) as rt:
        handle = await rt.submit(NAP, {})
        until = await sleeping_until(rt, handle.run_id)
        stop(workers, [signal.SIGKILL, signal.SIGTERM])  # every worker gone
        run = await rt.get_run(handle.run_id)
        in_time = time.time() < until and run.status is not RunStatus.COMPLETED
        return in_time, until, handle.run_id


async def _until_done(url: str, run_id: str) -> tuple[RunStatus, float, int]:
    async with Runtime(open_store(url), workflows=[NAP], recover=False) as rt:
        res = await rt.wait(run_id, timeout=GUARD)
        trs = await rt.store.list_transitions(run_id)
        evs = await rt.store.list_events(run_id)
        return res.status, trs[-1].ts, sum(e.type == "sleeping" for e in evs)
