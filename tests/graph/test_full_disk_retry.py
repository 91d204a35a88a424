"""A run whose store write hits a full disk that frees up a moment later (a real 2 MiB tmpfs,
filled by another file, emptied by that other process): the run is not failed, dead-lettered
or charged an attempt of its ``RunRetry``; it stops here, one WARNING says the store cannot
serve, and recovery resumes it from its last checkpoint once its lease expires.

Before, the write's ``OperationalError: database or disk is full`` was the run's failure as soon
as the disk had room for the failure's commit: a step commit that hit the full disk logged a
traceback ('runtime error') and left the run FAILED, never retried, whatever its RunRetry; a
node whose effect journal write hit it failed as a node error that ``is_retryable`` did not
take for retryable (only PostgreSQL's outages were), so the run FAILED at once (or, retried,
spent an attempt and was dead-lettered once the disk stayed full a few backoffs long)."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from pathlib import Path
from typing import Any, TypedDict

import pytest

from tests.graph.test_full_disk import HANG_GUARD, until
from tests.small_disk import fill
from tether import END, START, Graph, RunContext, RunRetry, RunStatus, Runtime
from tether.graph.run_retry import ATTEMPT_KEY, is_retryable
from tether.store.sqlite import SqliteStore

RETRY = RunRetry(max_attempts=2, initial_interval=0.05, jitter=False)


class S(TypedDict, total=False):
    n: int
    blob: str
    sent: int


def outage_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith("tether") and r.levelno >= logging.WARNING
    ]


async def test_a_step_commit_on_a_full_disk_that_frees_up_leaves_the_run_to_recovery(
    small_disk: Path, caplog: pytest.LogCaptureFixture
) -> None:
    room: list[Path] = []
    ran: list[int] = []

    async def big(state: S) -> dict[str, Any]:
        if not ran:
            room.append(fill(small_disk))  # the disk fills up while the node runs first
        ran.append(1)
        return {"n": 1, "blob": "x" * 64_000}

    g = Graph(S, name="fills")
    g.add_node("big", big).add_node("last", lambda s: {"n": s["n"] + 1})
    g.add_edge(START, "big").add_edge("big", "last").add_edge("last", END)
    wf = g.compile(run_retry=RETRY)
    store = SqliteStore(small_disk / "runs.db")
    failed: list[str] = []

    class FreesUp(logging.Handler):
        """The other process frees its file as soon as the runtime says the write failed."""

        def emit(self, record: logging.LogRecord) -> None:
            if room and record.levelno >= logging.WARNING:
                exc = record.exc_info[1] if record.exc_info else None
                failed.append(f"{record.getMessage()} {exc or ''}")
                room.pop().unlink()

    freer = FreesUp()
    logging.getLogger("tether.runtime").addHandler(freer)
    try:
        await run_it(store, wf, caplog, failed)
    finally:
        logging.getLogger("tether.runtime").removeHandler(freer)
    assert len(ran) == 2  # its step never committed: recovery ran the node again


async def run_it(
    store: SqliteStore, wf: Any, caplog: pytest.LogCaptureFixture, failed: list[str]
) -> None:
    caplog.set_level(logging.INFO, logger="tether")
    async with Runtime(store, lease_ttl=1.0, poll_interval=0.05, workflows=[wf]) as rt:
        handle = await rt.start(wf, {"n": 0})
        res = await asyncio.wait_for(handle.wait(), HANG_GUARD)
        rec = await rt.get_run(handle.run_id)
    assert failed and "database or disk is full" in failed[0], failed
    assert (res.status, res.state["n"]) == (RunStatus.COMPLETED, 2), res.error
    assert rec.error is None and rec.metadata.get(ATTEMPT_KEY, 1) == 1
    assert not [r for r in caplog.records if r.exc_info], "no traceback for a full disk"
    said = outage_lines(caplog)
    assert len(said) == 1 and "database or disk is full" in said[0], said
    assert "from its last checkpoint" in said[0], said


async def test_an_effect_journal_write_on_a_full_disk_is_no_failure_of_the_node(
    small_disk: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sent: list[str] = []
    stopped = asyncio.Event()

    async def send(state: S, ctx: RunContext) -> dict[str, Any]:
        def charge() -> int:  # not idempotent: run twice, it would charge twice
            sent.append(ctx.run_id)
            return 1

        if not stopped.is_set():
            filler = fill(small_disk)
            try:
                return {"sent": await ctx.effect("charge", charge)}
            finally:  # the disk frees up before the run's failure could be written
                filler.unlink()
                stopped.set()
        return {"sent": await ctx.effect("charge", charge)}

    g = Graph(S, name="journal")
    g.add_node("first", lambda s: {"n": 1}).add_node("send", send)
    g.add_edge(START, "first").add_edge("first", "send").add_edge("send", END)
    wf = g.compile(run_retry=RETRY)
    caplog.set_level(logging.INFO, logger="tether")
    store = SqliteStore(small_disk / "runs.db")
    async with Runtime(store, lease_ttl=1.0, poll_interval=0.05, workflows=[wf]) as rt:
        handle = await rt.start(wf, {"n": 0})
        await asyncio.wait_for(stopped.wait(), HANG_GUARD)
        await until(lambda: handle.run_id not in rt._tasks, "the run stopped here")
        rec = await rt.get_run(handle.run_id)
        assert rec.status is RunStatus.EXECUTING and rec.error is None, rec.error
        res = await asyncio.wait_for(handle.wait(), HANG_GUARD)  # recovery resumes it
        events = [e.type async for e in rt.events(handle.run_id, follow=False)]
    assert (res.status, res.state) == (RunStatus.COMPLETED, {"n": 1, "sent": 1}), res.error
    assert sent == [handle.run_id]
    assert res.record.metadata.get(ATTEMPT_KEY, 1) == 1
    assert "node_failed" not in events and "run_retry_scheduled" not in events, events
    said = outage_lines(caplog)
    assert len(said) == 1 and "database or disk is full" in said[0], said


def test_a_full_disk_is_retryable() -> None:
    """A node's own SQLite file on a full disk (not tether's store): a RunRetry retries it."""
    full = sqlite3.OperationalError("database or disk is full")
    full.sqlite_errorcode = 13  # type: ignore[attr-defined]
    assert is_retryable(full) and RETRY.retries(full)
    assert not is_retryable(sqlite3.OperationalError("no such table: t"))
