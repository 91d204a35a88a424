"""A run on a SQLite store whose disk fills up mid-step (a real 2 MiB tmpfs, filled by another
file). The node's journal write fails: the store cannot serve, which is no failure of the run's
(tests/graph/test_full_disk_retry.py): the run stays EXECUTING in the store, recovery resumes it
once there is room and its lease expired.

Before, ``wait()`` raised the store's ``OperationalError: database or disk is full`` as if the
run had failed, while the store still said EXECUTING and the run went on to complete (a caller
that started it again on that error would have run its effects twice)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypedDict

import pytest

from tests.small_disk import fill
from tether import END, START, Graph, RunContext, RunStatus, Runtime
from tether.store.sqlite import SqliteStore

HANG_GUARD = 120.0  # seconds; only ever reached when something hangs


class S(TypedDict, total=False):
    n: int
    sent: int


async def until(cond: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + HANG_GUARD
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        await asyncio.sleep(0.01)


async def test_a_failure_the_full_disk_cannot_record_leaves_the_run_to_recovery(
    small_disk: Path, caplog: pytest.LogCaptureFixture
) -> None:
    parked, go = asyncio.Event(), asyncio.Event()
    sent: list[str] = []

    async def first(state: S) -> dict[str, Any]:
        return {"n": 1}

    async def send(state: S, ctx: RunContext) -> dict[str, Any]:
        parked.set()
        await go.wait()  # released once the disk is full

        def charge() -> int:  # not idempotent: run twice, it would charge twice
            sent.append(ctx.run_id)
            return 1

        return {"n": state["n"] + 1, "sent": await ctx.effect("charge", charge)}

    g = Graph(S, name="full")
    g.add_node("first", first).add_node("send", send)
    g.add_edge(START, "first").add_edge("first", "send").add_edge("send", END)
    wf = g.compile()
    caplog.set_level(logging.WARNING, logger="tether")
    store = SqliteStore(small_disk / "runs.db")
    async with Runtime(store, owner="A", lease_ttl=1.0, poll_interval=0.05, workflows=[wf]) as rt:
        handle = await rt.start(wf, {"n": 0})
        waiting = asyncio.create_task(handle.wait())
        await asyncio.wait_for(parked.wait(), HANG_GUARD)
        filler = fill(small_disk)
        go.set()
        await until(lambda: handle.run_id not in rt._tasks, "the run stopped here")
        for _ in range(20):  # let the waiter see how the run's task ended
            await asyncio.sleep(0)
        assert not waiting.done(), waiting.exception() if waiting.done() else None
        rec = await rt.get_run(handle.run_id)
        assert rec.status is RunStatus.EXECUTING and rec.error is None
        filler.unlink()  # room again: recovery resumes the run once its lease expired
        res = await asyncio.wait_for(waiting, HANG_GUARD)
    assert (res.status, res.state) == (RunStatus.COMPLETED, {"n": 2, "sent": 1})
    assert sent == [handle.run_id]  # the effect ran once, after the disk had room
    said = [r.getMessage() for r in caplog.records if "last checkpoint" in r.getMessage()]
    assert len(said) == 1 and "database or disk is full" in said[0], said  # one per outage


async def test_the_background_sweeps_say_once_that_the_disk_is_full(
    small_disk: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A claimable run while the disk is full: each claim fails. The recovery sweep logged a
    traceback ('recovery sweep failed') every poll for as long as the disk stayed full; now
    one WARNING when it starts failing, one INFO when it works again, and the run goes on."""
    g = Graph(S, name="later")
    g.add_node("one", lambda s: {"n": 1}).add_edge(START, "one").add_edge("one", END)
    wf = g.compile()
    db = small_disk / "runs.db"
    submitter = Runtime(SqliteStore(db), recover=False)  # open: its WAL and shm files stay
    handle = await submitter.start(wf, {"n": 0}, execute=False)
    store = SqliteStore(db)
    filler = fill(small_disk)
    claims = {"failed": 0}
    real = store.claim_runs

    async def counted(*a: Any, **kw: Any) -> Any:
        try:
            return await real(*a, **kw)
        except Exception:
            claims["failed"] += 1
            raise

    store.claim_runs = counted  # type: ignore[method-assign]
    caplog.set_level(logging.INFO, logger="tether")
    async with Runtime(store, poll_interval=0.02, workflows=[wf]) as rt:
        await until(lambda: claims["failed"] >= 5, "claims failed on the full disk")
        filler.unlink()
        res = await asyncio.wait_for(rt.wait(handle.run_id), HANG_GUARD)
    await submitter.close()
    assert res.status is RunStatus.COMPLETED
    ours = [r for r in caplog.records if r.name == "tether.runtime"]
    assert not [r.getMessage() for r in ours if r.exc_info], "no traceback per sweep"
    msgs = [r.getMessage() for r in ours]
    down = [m for m in msgs if "background sweeps" in m and "disk is full" in m]
    up = [m for m in msgs if "background sweeps" in m and "again" in m]
    assert (len(down), len(up)) == (1, 1), msgs
