"""Opening a SQLite store: no write lock and no thread when the database is already current."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest

from tether.store import SqliteStore, schema
from tether.store.sqlite_wal import _PassiveCheckpointer


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
