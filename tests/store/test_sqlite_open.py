"""Opening a SQLite store: no write lock and no thread when the database is already current."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tether.core.lifecycle import RunStatus
from tether.store import SqliteStore, schema
from tether.store import sqlite as sqlite_module
from tether.store.sqlite_wal import _PassiveCheckpointer
from tether.store.types import Checkpoint, RunRecord


async def test_opening_a_current_database_never_waits_for_another_writer(
    tmp_path: Path,
) -> None:
    """A resume in a fresh process must not queue behind whatever another process is
    writing: a database at the current schema version is checked with one read."""
    path = tmp_path / "runs.db"
    first = SqliteStore(path)
    await first.setup()
    await first.close()
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        store = SqliteStore(path, busy_timeout=0.05)
        await store.setup()  # the locked migration path would fail with "database is locked"
        assert await store.list_runs() == []
        await store.close()
    finally:
        writer.execute("ROLLBACK")
        writer.close()


async def test_a_database_behind_the_current_schema_still_migrates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "runs.db"
    with monkeypatch.context() as m:  # a file written by a tether that knew versions 1-2
        m.setattr(schema, "_VERSIONS", schema._VERSIONS[:2])
        m.setattr(schema, "LATEST_VERSION", 2)
        old = SqliteStore(path)
        await old.setup()
        await old.close()
    again = SqliteStore(path)
    await again.setup()  # the one-read check sees version 2: the locked migration path runs
    await again.close()
    with sqlite3.connect(path) as db:
        (version,) = db.execute("SELECT MAX(version) FROM tether_schema_version").fetchone()
        indexes = {n for (n,) in db.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert version == schema.LATEST_VERSION
    assert {"tether_runs_status_created", "tether_runs_workflow_created"} <= indexes


async def test_opening_a_store_starts_no_thread(tmp_path: Path) -> None:
    before = {t.ident for t in threading.enumerate()}
    store = SqliteStore(tmp_path / "runs.db")
    await store.setup()
    assert store._wal.thread is None
    assert {t.ident for t in threading.enumerate()} == before
    await store.close()


def test_the_checkpointer_thread_starts_once_it_has_work(tmp_path: Path) -> None:
    path = str(tmp_path / "w.db")
    sqlite3.connect(path).close()
    cp = _PassiveCheckpointer(path, every=3)
    cp._born = time.monotonic() + 3600  # "just opened", whatever the machine's pace
    cp.poke(1)
    cp.poke(2)
    assert cp.thread is None
    cp.poke(3)  # `every` commits: checkpoint work to do
    assert cp.thread is not None and cp.thread.is_alive()
    cp.close()
    assert not cp.thread.is_alive()

    late = _PassiveCheckpointer(path, every=1000)
    late._born = time.monotonic() - 2  # a commit a second or more after opening
    late.poke(1)
    assert late.thread is not None and late.thread.is_alive()
    late.close()
    quiet = _PassiveCheckpointer(path, every=1000)
    quiet.close()  # never started: closing is a no-op
    assert quiet.thread is None


# -- the first write into a new WAL ------------------------------------------------------------
async def _reopened(path: Path, **kwargs: Any) -> tuple[SqliteStore, list[str]]:
    """A store opened on ``path`` after the last one closed (no WAL left), and the statements
    its connection runs from then on."""
    first = SqliteStore(path)
    await first.setup()
    run = RunRecord("r1", "wf", RunStatus.EXECUTING)
    await first.create_run(run, Checkpoint("r1", 0, [], [], {}), [])
    await first.close()
    store = SqliteStore(path, **kwargs)
    await store.setup()
    seen: list[str] = []
    store._db.set_trace_callback(seen.append)
    return store, seen


def _synchronous(seen: list[str]) -> list[str]:
    return [s for s in seen if s.startswith(("PRAGMA synchronous", "BEGIN", "COMMIT", "ROLL"))]


async def test_the_first_write_into_a_new_wal_does_not_sync_its_header(tmp_path: Path) -> None:
    """A fresh process's first commit (a resume's lease) writes a new WAL: its header is not
    synced (an empty file has no older frames a power loss could bring back); only that one
    transaction runs unsynced, and what it wrote is kept."""
    path = tmp_path / "runs.db"
    store, seen = await _reopened(path)
    assert Path(f"{path}-wal").stat().st_size == 0
    lease = await store.acquire_lease("r1", "w1", 30.0)
    assert lease is not None
    await store.take_tokens("bucket", 1.0, 5.0)
    assert _synchronous(seen) == [
        "PRAGMA synchronous=OFF",
        "BEGIN IMMEDIATE",
        "COMMIT",
        "PRAGMA synchronous=NORMAL",
        "BEGIN IMMEDIATE",  # the next write syncs as before
        "COMMIT",
    ]
    assert store._db.execute("PRAGMA synchronous").fetchone() == (1,)  # NORMAL
    await store.close()
    again = SqliteStore(path)
    assert (await again.get_run("r1")).lease_token == lease.token
    await again.close()


async def test_a_wal_with_frames_is_written_as_usual(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    store, seen = await _reopened(path)
    other = sqlite3.connect(path, isolation_level=None)  # another process wrote the WAL
    other.execute("UPDATE tether_runs SET updated_at = 1 WHERE run_id = 'r1'")
    assert Path(f"{path}-wal").stat().st_size > 0
    try:
        assert await store.acquire_lease("r1", "w1", 30.0) is not None
    finally:
        other.close()
    assert not any(s.startswith("PRAGMA synchronous") for s in seen)
    await store.close()


async def test_power_loss_durability_syncs_the_first_write_too(tmp_path: Path) -> None:
    store, seen = await _reopened(tmp_path / "runs.db", durability="power-loss")
    assert await store.acquire_lease("r1", "w1", 30.0) is not None
    assert not any(s.startswith("PRAGMA synchronous") for s in seen)
    await store.close()


async def test_a_wal_written_before_the_lock_is_taken_is_synced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The WAL was empty when looked at, and another process wrote it before this one held
    the write lock: the transaction starts again, synced as usual."""
    store, seen = await _reopened(tmp_path / "runs.db")
    sizes = iter([0, 4096])
    monkeypatch.setattr(sqlite_module, "_file_size", lambda _path: next(sizes))
    assert await store.acquire_lease("r1", "w1", 30.0) is not None
    assert _synchronous(seen) == [
        "PRAGMA synchronous=OFF",
        "BEGIN IMMEDIATE",
        "ROLLBACK",
        "PRAGMA synchronous=NORMAL",
        "BEGIN IMMEDIATE",
        "COMMIT",
    ]
    await store.close()
